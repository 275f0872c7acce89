"""A checked definition → one ``transitions.Machine`` per (workflow, content hash).

The machine is built once with ``model=None`` and ``auto_transitions=False``;
a case is attached only while one event is processed (``add_model`` with the
case's current state, trigger, ``remove_model``), so no per-case machine lives
in memory.  Guards are compiled once here into allow-listed evaluators.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from transitions import Machine

from engine.definitions.expressions import Guard, compile_guard
from engine.definitions.model import TransitionSpec, Workflow

__all__ = ["CompiledWorkflow"]


class _Attached:
    """The transient model: a case's state while one event runs."""

    def __init__(self) -> None:
        self.state = ""
        self.chosen: TransitionSpec | None = None


class CompiledWorkflow:
    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.guards: dict[int, Guard] = {
            t.index: compile_guard(t.when) for t in workflow.transitions if t.when is not None
        }
        self._lock = threading.Lock()
        self.machine = Machine(
            model=None,
            states=[s.name for s in workflow.states],
            initial=workflow.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for t in workflow.transitions:
            self.machine.add_transition(
                t.trigger,
                list(t.sources),
                t.dest,
                conditions=[self._condition(t)] if t.index in self.guards else [],
                after=[self._recorder(t)],
            )

    def _condition(self, t: TransitionSpec) -> Any:
        guard = self.guards[t.index]

        def condition(event: Any) -> bool:
            return guard(event.kwargs["env"])

        return condition

    @staticmethod
    def _recorder(t: TransitionSpec) -> Any:
        def record(event: Any) -> None:
            event.model.chosen = t

        return record

    def candidates(self, state: str, trigger: str) -> list[TransitionSpec]:
        """Transitions for *trigger* from *state*, in declaration order."""
        return [t for t in self.workflow.transitions_from(state) if t.trigger == trigger]

    def fire(self, state: str, trigger: str, env: Mapping[str, Any]) -> TransitionSpec | None:
        """The transition the machine takes from *state*, or None if every guard is false.

        The caller has already checked that *trigger* is allowed from *state*.
        """
        model = _Attached()
        with self._lock:
            self.machine.add_model(model, initial=state)
            try:
                model.trigger(trigger, env=env)  # type: ignore[attr-defined]
            finally:
                self.machine.remove_model(model)
        return model.chosen
