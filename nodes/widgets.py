"""Widget values checked by the pack itself: ComfyUI 0.3.75 checks neither NaN floats nor combo options of V3 nodes.

Every node of the pack derives from AVINode. Its values are checked twice with one helper: when a
prompt is queued (validate_inputs, so POST /prompt refuses it before anything runs) and again just
before execute (values that arrive over links are unknown at queue time).
"""
import functools
import math
import re

from comfy_api.v0_0_2 import io  # a versioned API module (latest moves); v0.3.75 and current ComfyUI have it


def shown(value) -> str:
    """A value as an error message quotes it, shortened."""
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + "…" + text[-12:]


def number_problem(widget, value, integer: bool):
    """Why a number widget's value does not fit (type, finiteness, min/max), or None."""
    low, high = widget.min, widget.max
    bounds = (f" from {low} to {high}" if low is not None and high is not None else
              f" >= {low}" if low is not None else f" <= {high}" if high is not None else "")
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    fits = (not isinstance(value, bool) and ok_type and (integer or math.isfinite(value))
            and (low is None or value >= low) and (high is None or value <= high))
    if fits:
        return None
    return f"{widget.id} must be {'an integer' if integer else 'a finite number'}{bounds}; got {shown(value)}"


def widget_problem(widget, value):
    """Why one value does not fit its widget, or None; inputs that are not number or combo widgets always fit."""
    if value is None:  # a linked input at queue time, or an optional one left out
        return None
    if isinstance(widget, io.Combo.Input):
        options = list(widget.options or [])
        if value not in options:
            listed = ", ".join(shown(o) for o in options[:12]) + (f", … ({len(options)} in all)" if len(options) > 12 else "")
            return f"{widget.id} must be one of {listed}; got {shown(value)}"
        return None
    if isinstance(widget, io.Float.Input):
        return number_problem(widget, value, integer=False)
    if isinstance(widget, io.Int.Input):
        return number_problem(widget, value, integer=True)
    return None


def widget_problems(inputs, values: dict) -> list[str]:
    """One message per value that does not fit its widget (NaN/Inf floats, out-of-range numbers, unknown options)."""
    problems = []
    for widget in inputs:
        problem = widget_problem(widget, values.get(widget.id))
        if problem:
            problems.append(problem)
    return problems


def check_widgets(node, values: dict) -> None:
    """Raise ValueError naming every value that does not fit its widget."""
    problems = widget_problems(node.define_schema().inputs, values)
    if problems:
        raise ValueError("; ".join(problems))


def number_token(token: str, integer: bool):
    """The number a token of a number list spells, or None; a whole number too long for int() is ±inf (out of any range)."""
    try:
        return int(token) if integer else float(token)
    except ValueError:
        if integer and re.fullmatch(r"[+-]?\d+", token):  # past Python's 4300-digit limit for int()
            return -math.inf if token.startswith("-") else math.inf
        return None


def parse_numbers(name: str, text: str, integer: bool = False, example: str = "0, 0.5, 1", allow_empty: bool = False,
                  low=None, high=None, why: str = "") -> list:
    """Numbers from a text widget such as "0, 0.5, 1" (commas, semicolons or spaces); [] only when allow_empty.

    With low and high, each value must be finite and within them (`why` says where the range comes from).
    """
    values = []
    kind = "whole numbers" if integer else "numbers"
    for token in [t for t in re.split(r"[,;\s]+", text or "") if t]:
        value = number_token(token, integer)
        if value is None:
            raise ValueError(f"{name} must hold {kind} separated by commas, e.g. '{example}'; {shown(token)} is not one")
        if low is not None and high is not None and not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{name} must hold {kind} from {low:g} to {high:g}{why}; got {shown(token)}")
        values.append(value)
    if not values and not allow_empty:
        raise ValueError(f"{name} must hold at least one value, e.g. '{example}'")
    return values


class AVINode(io.ComfyNode):
    """Base of the pack's nodes: widget values are checked at queue time and before execute."""

    @classmethod
    def validate_inputs(cls, **values):
        """ComfyUI's queue-time hook: True, or the text of what does not fit."""
        problems = widget_problems(cls.define_schema().inputs, values)
        return True if not problems else "; ".join(problems)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("execute")
        # ComfyUI clones node classes per run (the clone inherits the wrapped execute): wrap once.
        if run is None or getattr(run.__func__, "avi_checked", False):
            return
        body = run.__func__

        @functools.wraps(body)
        def execute(klass, **values):
            check_widgets(klass, values)
            return body(klass, **values)

        execute.avi_checked = True
        cls.execute = classmethod(execute)
