"""Reading the operator's files and options: the resource descriptor and the settings."""
