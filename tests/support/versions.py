"""A small workflow of the tests' own (``hedge_check``) and three next versions of it,
for the ``workflow migrate`` tests: a shorter deadline, a renamed state, a field made
required."""

from __future__ import annotations

__all__ = ["RENAMED", "REQUIRED", "SHORTER", "V1"]

V1 = """
workflow: hedge_check
title: 田埂巡查
initial: checking
timezone: Asia/Shanghai
roles: [group.member, village.leader]
fields:
  plot: {type: string, required: true, title: 地块}
  owner: {type: string, title: 承包户}
states:
  checking:
    title: 待核查
    deadline:
      within: 48h
      remind: [24h]
      escalate:
        - after: 0m
          notify: [village.leader]
  fixing:
    title: 整改中
    deadline:
      within: 72h
  done:
    title: 已办结
    final: true
transitions:
  - trigger: check
    from: checking
    to: fixing
    roles: [group.member]
  - trigger: finish
    from: fixing
    to: done
    roles: [group.member]
"""
SHORTER = V1.replace("within: 48h", "within: 24h").replace("remind: [24h]", "remind: [12h]")
RENAMED = (
    V1.replace("  checking:\n", "  inspecting:\n")
    .replace("initial: checking", "initial: inspecting")
    .replace("from: checking", "from: inspecting")
)
REQUIRED = V1.replace("owner: {type: string,", "owner: {type: string, required: true,")
