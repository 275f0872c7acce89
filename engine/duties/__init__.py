"""Working a case together: duties with their own deadlines beside the state's.

- :mod:`engine.duties.actions` — the transaction every collaboration action runs in
  (idempotency key, scoped lock, the actor's roles, its history entry);
- :mod:`engine.duties.timers` — a duty's deadline, reminders and rungs as timer rows
  fired by the same sweep.
"""
