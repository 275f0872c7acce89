"""Helpers shared by the tests and the benchmarks (no tests here).

- ``paths``: the repository's folders and files, the ``gengbao`` executable;
- ``processes``: the environment of a ``gengbao`` child process;
- ``databases``: a test database (SQLite file or PostgreSQL schema), schemas on the server;
- ``properties``: the Hypothesis profiles and ``examples(n)``;
- ``farmland``: the bundled lifecycle walked from discovery to close-out, an App on it;
- ``queries``: rows of a table, read straight from the database;
- ``patrolling``: the patrol rules, a recording channel;
- ``receivers``: loopback SMTP and HTTP servers that notifications are sent to;
- ``api_server``: a real ``gengbao serve`` process on a free port;
- ``timer_worker``: a sweeper process that dies mid-sweep (run as a script);
- ``templates``: a migrated SQLite file copied for each Hypothesis example;
- ``migrations``: the golden databases of every schema revision (``python -m``).

The fixtures built on these are defined once, in ``tests/conftest.py``.
"""
