"""The locust users of the load scenario (library mode; importing this module imports locust, which
monkey-patches the process for gevent: the load generator only, never a Django process).

An :class:`Annotator` works the annotation workspace's API on its own video of a phase-3
project: it takes the video and adds an object once (kept across steps, as a person keeps a
video), then repeats: fetch the frame (once per frame: the page's HTTP cache keeps it), click on
the object (``video_click``, the frame's full click list, served by the interactive worker
through SAM 2's memory), save a brush stroke as a draft edit, and every ``PROPAGATE_EVERY``
clicks propagate both ways from the clicked frame and follow the job as the page does (job and
draft ``?since=`` polled, every 0.3 s while frames arrive, slowing to 2 s) until it ends, then
reload the draft. A :class:`Reviewer` takes the next submitted masklet, opens its review page
(the player's data is embedded there), reads its frames/RLE and quality from the API, plays it
(every frame's JPEG, at the player's frame rate) and gives a verdict; with the queue empty it
re-opens a masklet it has judged.

Request kinds (locust ``name``) are the columns of the report; ``propagate (start to done)`` is
a custom entry: from the propagate request to the job's end, as the annotator waits for it.
"""

from __future__ import annotations

import json
import random
import time
import urllib.request
from typing import Any

import gevent
from locust import FastHttpUser, between, task

from benchmarks.load.scene import FRAMES, brush_rle, click_point

PROPAGATE_EVERY = 5
POLL_MIN, POLL_MAX = 0.3, 2.0  # seconds, as the page polls
PLAY_FPS = 6.0
MAX_POINTS = 4
TERMINAL = ("succeeded", "failed", "cancelled")


class Pools:
    """Identities handed to the users of one step (each user takes one in ``on_start``) and the
    propagation jobs still running when a step stops (drained before the next)."""

    annotators: list[dict[str, Any]] = []
    reviewers: list[dict[str, Any]] = []
    jobs: dict[int, str] = {}  # job id -> token of its annotator
    project: dict[str, int] = {}
    started = 0  # users whose on_start has ended

    @classmethod
    def wait_started(cls, count: int, timeout: float = 300.0) -> None:
        """Until ``count`` users have started (leases taken, objects made)."""
        deadline = time.monotonic() + timeout
        while cls.started < count and time.monotonic() < deadline:
            gevent.sleep(0.2)

    @classmethod
    def fill(cls, world: dict[str, Any], annotators: int, reviewers: int) -> None:
        cls.annotators = list(world["annotators"][:annotators])
        cls.reviewers = list(world["reviewers"][:reviewers])
        cls.project = {"annotate": world["annotate_project"], "review": world["review_project"]}
        cls.started = 0


def _headers(me: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Token {me['token']}"}


def _cookie(me: dict[str, Any]) -> dict[str, str]:
    return {"Cookie": f"sessionid={me['session']}"}


class Annotator(FastHttpUser):
    """One annotator clicking, saving and propagating (module docstring)."""

    fixed_count = 0
    wait_time = between(0.5, 1.5)  # bench_load.py sets it from --think

    def on_start(self) -> None:
        self.me = Pools.annotators.pop(0)
        me = self.me
        if "masklet" not in me:
            lease = self._json(
                "POST",
                "/api/annotation/next/",
                "take video",
                {"project": Pools.project["annotate"]},
            )
            made = self._json(
                "POST", f"/api/annotation/leases/{lease['id']}/objects/", "new object", {}
            )
            me.update(masklet=made["id"], video=lease["video"], clicks=0, points={}, seen=[])
        draft = self._json("GET", f"/api/masklets/{me['masklet']}/draft/", "draft load")
        me["version"] = draft["version"]
        Pools.started += 1

    def _json(self, method: str, path: str, name: str, body: Any = None) -> Any:
        with self.client.request(
            method, path, name=name, json=body, headers=_headers(self.me), catch_response=True
        ) as answer:
            if answer.status_code >= 400 or answer.status_code == 0:
                answer.failure(f"{answer.status_code} {str(answer.text)[:120]}")
                return None
            return answer.json() if answer.text else {}

    @task
    def work(self) -> None:
        me = self.me
        n = me["clicks"]
        frame = (n * 7) % FRAMES  # hops over the video
        if frame not in me["seen"]:
            url = f"/media/videos/{me['video']}/frames/{frame:06d}.jpg"
            self.client.get(url, name="frame fetch", headers=_cookie(me))
            me["seen"].append(frame)
        points = me["points"].setdefault(str(frame), [])
        if len(points) >= MAX_POINTS:
            points.clear()  # start the frame over with a new first click
        points.append(click_point(frame, len(points)))
        body = {
            "base_version": me["version"],
            "frame_index": frame,
            "tool": "video_click",
            "points": points,
            "labels": [1] * len(points),
            "box": None,
        }
        answer = self._json("POST", f"/api/masklets/{me['masklet']}/prompt/", "click", body)
        me["clicks"] = n + 1
        if answer is None:
            self._reload()
            return
        me["version"] = answer["version"]
        if me["clicks"] % PROPAGATE_EVERY == 1:
            self._propagate(frame)
        else:
            self._brush((frame + 3) % FRAMES)

    def _reload(self) -> None:
        draft = self._json("GET", f"/api/masklets/{self.me['masklet']}/draft/", "draft load")
        if draft is not None:
            self.me["version"] = draft["version"]

    def _brush(self, frame: int) -> None:
        body = {
            "base_version": self.me["version"],
            "edits": [{"frame_index": frame, "tool": "brush", "rle": brush_rle(frame)}],
        }
        answer = self._json(
            "POST", f"/api/masklets/{self.me['masklet']}/draft/edits/", "draft save", body
        )
        if answer is None:
            self._reload()
        else:
            self.me["version"] = answer["version"]

    def _propagate(self, frame: int) -> None:
        me = self.me
        started = time.perf_counter()
        body = {"base_version": me["version"], "start_frame": frame, "direction": "both"}
        answer = self._json(
            "POST", f"/api/masklets/{me['masklet']}/propagate/", "propagate start", body
        )
        if answer is None:
            self._reload()
            return
        job = answer["job"]
        Pools.jobs[job["id"]] = me["token"]
        since, delay = me["version"], POLL_MIN
        while job is not None and job["status"] not in TERMINAL:
            gevent.sleep(delay)  # the page's adaptive poll (annotator/propagation.js)
            job = self._json("GET", f"/api/jobs/{job['id']}/", "job poll")
            path = f"/api/masklets/{me['masklet']}/draft/?since={since}"
            frames = self._json("GET", path, "draft poll")
            changed = frames is not None and frames["version"] != since
            since = frames["version"] if frames is not None else since
            delay = POLL_MIN if changed else min(POLL_MAX, delay * 1.5)
        Pools.jobs.pop(answer["job"]["id"], None)
        error = None if job is not None and job["status"] == "succeeded" else (job or {})
        self.environment.events.request.fire(
            request_type="JOB",
            name="propagate (start to done)",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=None
            if error is None
            else RuntimeError(f"job {error.get('status')}: {error.get('error', '')}"),
            context={},
        )
        self._reload()


class Reviewer(FastHttpUser):
    """One reviewer playing masklets and judging them (module docstring)."""

    fixed_count = 0
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.me = Pools.reviewers.pop(0)
        self.me.setdefault("judged", [])
        Pools.started += 1

    def _json(self, method: str, path: str, name: str, body: Any = None) -> Any:
        with self.client.request(
            method, path, name=name, json=body, headers=_headers(self.me), catch_response=True
        ) as answer:
            if answer.status_code >= 400 or answer.status_code == 0:
                answer.failure(f"{answer.status_code} {str(answer.text)[:120]}")
                return None
            return answer.json() if answer.text else None

    @task
    def review(self) -> None:
        me = self.me
        taken = self._json(
            "POST", "/api/review/queue/next/", "take masklet", {"project": Pools.project["review"]}
        )
        if taken is None and not me["judged"]:
            return
        masklet = taken["id"] if taken else random.choice(me["judged"])
        page = f"/review/masklets/{masklet}/"
        self.client.get(page, name="review page", headers=_cookie(me))
        data = self._json("GET", f"/api/masklets/{masklet}/review/", "review data (RLE)")
        self._json("GET", f"/api/masklets/{masklet}/quality/", "quality")
        if data is None:
            return
        prefix = data["video"]["frame_url_prefix"]
        for index in range(int(data["video"]["frame_count"])):
            self.client.get(f"{prefix}{index:06d}.jpg", name="frame fetch", headers=_cookie(me))
            gevent.sleep(1.0 / PLAY_FPS)
        if taken is None:
            return
        verdict = "satisfactory" if len(me["judged"]) % 4 else "reject"
        body = {
            "revision": data["revision"]["id"],
            "verdict": verdict,
            "flagged_frames": [],
            "frame_notes": {},
            "comment": "",
        }
        if self._json("POST", f"/api/masklets/{masklet}/reviews/", "verdict", body) is not None:
            me["judged"].append(masklet)


def drain(base: str, timeout: float = 120.0) -> int:
    """Wait until the propagation jobs left running by a stopped step end; how many were left."""
    left = dict(Pools.jobs)
    deadline = time.monotonic() + timeout
    for job_id, token in left.items():
        while time.monotonic() < deadline:
            request = urllib.request.Request(
                f"{base}/api/jobs/{job_id}/", headers={"Authorization": f"Token {token}"}
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                if json.loads(answer.read())["status"] in TERMINAL:
                    break
            gevent.sleep(POLL_MIN)
    Pools.jobs.clear()
    return len(left)
