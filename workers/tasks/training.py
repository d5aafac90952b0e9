"""Celery tasks of retraining rounds: the round itself (``train`` queue) and the trigger sweep."""

from __future__ import annotations

from celery import shared_task

from engine.training import rounds, triggers


# A round trains and evaluates for up to hours; the hard limit stays under Redis's visibility
# timeout (6 h) so the broker never hands a running round to a second worker.
@shared_task(
    name="workers.train_round",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=5 * 3600,
    time_limit=5 * 3600 + 15 * 60,
)
def train_round(job_id: int) -> None:
    rounds.run_round_job(job_id)


# A sweep is a few queries per project with round triggers.
@shared_task(
    name="workers.start_due_rounds",
    ignore_result=True,
    soft_time_limit=2 * 60,
    time_limit=3 * 60,
)
def start_due_rounds() -> list[int]:
    return triggers.do_start_due_rounds()
