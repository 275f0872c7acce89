"""Working a case together: duties with their own deadlines beside the state's.

- :mod:`engine.duties.actions` — the transaction every collaboration action runs in
  (idempotency key, scoped lock, the actor's roles, its history entry);
- :mod:`engine.duties.timers` — a duty's deadline, reminders and rungs as timer rows
  fired by the same sweep;
- :mod:`engine.duties.countersign` — 会签: parties that each sign or refuse before a
  case leaves its state (the join exactly once), read through
  :mod:`engine.duties.party_views`.
"""
