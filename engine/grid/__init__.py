"""The three-level grid: units, people, their roles, and who sees what.

registry.py    load, remove and read the grid (units by path, role holders)
parse.py       the grid YAML file, read with positions (:mod:`engine.yamlkit`)
views.py       :class:`GridViews` — the grid as people and the API read it
visibility.py  the one visibility rule, as SQL: a viewer sees its units and below
tokens.py      API tokens: a hash per token, each standing for a person of the grid
"""
