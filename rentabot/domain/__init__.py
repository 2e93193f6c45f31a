"""The rules of rentabot: locks, expiry, the reservation queue and its policies.

Nothing in this package imports a web framework or a database library, and no
function reads the system clock: every rule takes ``now`` as an argument and works
on a :class:`~rentabot.domain.ports.Transaction` supplied by a store.
"""
