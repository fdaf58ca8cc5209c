"""The Lessons page's catalogue (no Streamlit): nine lessons in order, each a small scenario run by the core, a
question to predict, and the computed answer with an explanation generated from the numbers.

A lesson lives in one module here (`LESSON = Lesson(...)`, see base.py); LESSONS lists them in teaching order.
"""
from .base import Case, Choice, Knob, Lesson, Question, Reveal, fingerprint, grade, run_case
from .clip_higher import LESSON as _clip_higher
from .clipped_gradient import LESSON as _clipped_gradient
from .dual_clip_floor import LESSON as _dual_clip_floor
from .grpo_vs_gspo import LESSON as _grpo_vs_gspo
from .gspo_epsilon import LESSON as _gspo_epsilon
from .length import LESSON as _length
from .on_policy import LESSON as _on_policy
from .read import group_rows
from .sign_of_a import LESSON as _sign_of_a
from .soft_gates import LESSON as _soft_gates

LESSONS: tuple[Lesson, ...] = (_sign_of_a, _clipped_gradient, _grpo_vs_gspo, _length, _dual_clip_floor, _clip_higher,
                               _gspo_epsilon, _soft_gates, _on_policy)
KEYS = tuple(lesson.key for lesson in LESSONS)

__all__ = ["Case", "Choice", "KEYS", "Knob", "LESSONS", "Lesson", "Question", "Reveal", "completed", "fingerprint",
           "grade", "group_rows", "run_case"]


def completed(value) -> list[str]:
    """The completed lessons a link holds, in the catalogue's order (unknown keys dropped); anything but a list of
    strings raises ValueError (the page's control then falls back to none completed, with a message)."""
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"not a list of lesson keys: {value!r}"[:80])
    return [k for k in KEYS if k in value]
