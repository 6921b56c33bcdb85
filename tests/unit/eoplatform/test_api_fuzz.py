"""The REST API fuzzed from its own OpenAPI schema (issue 10 §11): every operation `/api/schema/` describes is
called with the inputs schemathesis derives from it (its coverage phase: boundary values, wrong types, missing
and unexpected fields; then a few random valid and invalid ones), as each role and anonymously; none may answer
5xx. Schemathesis alone, a few examples at a time, seldom draws what breaks a database (NUL, ids past 64 bits),
so the first case of each operation that passes validation is also sent with hostile values (HOSTILE_*) in each
query parameter, path id and JSON field in turn.

In process and bounded: the Django WSGI application answers schemathesis' WSGI client inside this test's
transaction, each call in a savepoint rolled back after it (the data stays as set up, and what one call breaks on
PostgreSQL does not poison the next). Generation is deterministic (fixed seed, no shrinking) with a few random
examples per operation. Operations with a path id are also called with the id of a row that exists, so bodies
reach real objects. Celery tasks are never sent (jobs are rows here).

More random examples: CRYOLABEL_FUZZ_EXAMPLES=50. Response schema conformance is reported (printed, run with
-s), not checked, with CRYOLABEL_FUZZ_CONFORMANCE=1."""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction

from tests.conftest import cast_vote

pytestmark = [pytest.mark.django_db]

EXAMPLES = int(os.environ.get("CRYOLABEL_FUZZ_EXAMPLES", "2"))  # more on demand: the suite must stay under 12 min
CONFORMANCE = os.environ.get("CRYOLABEL_FUZZ_CONFORMANCE") == "1"


@pytest.fixture
def wsgi_app(caplog):
    """Django's WSGI application, keeping this test's connection open across requests (as Django's test client
    does: a WSGI request would otherwise close it at its end, and with it the test's transaction), and recording
    the traceback of any exception a view lets out."""
    from django.core.signals import got_request_exception

    from eoplatform.wsgi import application

    raised: list[str] = []

    def record(**_kwargs):
        raised.append(traceback.format_exc())

    caplog.set_level(logging.CRITICAL, logger="django.request")  # thousands of 4xx lines; 5xx are recorded here
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    got_request_exception.connect(record, dispatch_uid="api-fuzz")
    application.raised = raised
    try:
        yield application
    finally:
        got_request_exception.disconnect(dispatch_uid="api-fuzz")
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app):
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
    schema.config.generation.update(modes=list(GenerationMode), max_examples=EXAMPLES, no_shrink=True,
                                    deterministic=True)
    schema.config.seed = 10_11
    return schema


@pytest.fixture
def fuzz_world(ingested, annotator, expert, admin_user, monkeypatch):
    """Rows for the path ids to find: imagettes, a vote, an active model with predictions, a job, an export; and
    each role's credentials (a DRF token; anonymous sends none)."""
    from rest_framework.throttling import SimpleRateThrottle

    from accounts.services import token_for
    from eoplatform.celery import app
    from inference.models import Prediction
    from jobs.services import job_submit
    from training.models import Export, ModelVersion, Snapshot

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)
    # The rate limits would turn most of the run into 429s (their counters outlive the rolled-back savepoints).
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "1000000/minute")
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "1000000/minute")

    vote = cast_vote(annotator, ingested[0], 1)
    snapshot = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={"train": 0.75, "val": 0.2,
                                       "test": 0.05},
                                       agreement_threshold=0.6, size=1)
    version = ModelVersion.objects.create(network="classifier", number=1, snapshot=snapshot,
                                          checkpoint="models/classifier/v1.pt", is_active=True)
    for item in ingested[1:6]:
        Prediction.objects.create(imagette=item, model_version=version, probabilities=[0.9] + [0.05] * 9,
                                  label_mask=1, top1=0, confidence=0.5, entropy=0.5, margin=0.4)
    job = job_submit(kind="worker_check", params={}, created_by=admin_user)
    export = Export.objects.create(number=1, snapshot=snapshot, format="csv", path="exports/fuzz-0001", job=job)
    roles = {"anonymous": {}}
    for user in (annotator, expert, admin_user):
        roles[f"{user.username} ({user.groups.get().name})"] = {"Authorization": f"Token {token_for(user=user)}"}
    ids = {
        "imagettes": ingested[6].pk,  # no vote, no prediction
        "review": ingested[1].pk,  # predicted by the active model
        "votes": vote.pk,
        "jobs": str(job.pk),
        "models": version.pk,
        "exports": export.pk,
    }
    return roles, ids


def _existing_path_parameters(case, ids: dict) -> dict | None:
    """The case's path parameters naming a row that exists, for an operation with a path id."""
    segments = case.operation.path.strip("/").split("/")  # api, v1, <collection>, {name}, ...
    if len(segments) < 4 or not segments[3].startswith("{") or segments[2] not in ids:
        return None
    return {**(case.path_parameters or {}), segments[3][1:-1]: ids[segments[2]]}


def _call(case, *, role: str, headers: dict, app) -> tuple[int, str | None]:
    """Call the case in a savepoint rolled back after it: its status, and a description of the failure when it
    answers 5xx."""
    app.raised.clear()
    with transaction.atomic():
        response = case.call(headers=headers)
        transaction.set_rollback(True)
    if response.status_code >= 500:
        body = "" if type(case.body).__name__ == "NotSet" else f" body={case.body!r:.400}"
        error = app.raised[-1] if app.raised else f"(no exception recorded) {response.text[:300]}"
        return response.status_code, (f"as {role}: {case.method} {case.formatted_path} query={case.query!r:.300} "
                                      f"media_type={case.media_type!r}{body} -> {response.status_code}\n{error}")
    if CONFORMANCE and response.status_code < 500:
        from schemathesis.specs.openapi.checks import response_schema_conformance

        try:
            case.validate_response(response, checks=[response_schema_conformance])
        except BaseExceptionGroup as mismatches:  # reported, not checked
            for mismatch in mismatches.exceptions:
                print(f"\nCONFORMANCE as {role}: {case.method} {case.operation.path} -> {response.status_code}: "
                      f"{getattr(mismatch, 'title', '')}: {str(mismatch).strip().splitlines()[:3][-1][:200]}")
    return response.status_code, None


# Values that broke APIs before, put in each query parameter, path id and top-level JSON body field in turn:
# NUL (PostgreSQL refuses it in text), integers beyond 64 bits, non-finite numbers, dates past year 9999,
# long strings, and the wrong JSON types.
HOSTILE_TEXT = ["a\x00b", "9223372036854775808", "-9223372036854775809", "1" + "0" * 30, "NaN", "-1e400",
                "9999-12", "0000-00", "", "x" * 2000, "1,\x00"]
HOSTILE_JSON = ["a\x00b", "9223372036854775808", "NaN", "9999-12", "x" * 2000, 2**63, -(2**63) - 1, 10**30, 1e308,
                -1, None, True, [], ["a\x00"], {"a": "\x00"}]
HOSTILE_IDS = ["0", "9223372036854775807", "9223372036854775808", "1" + "0" * 30]


def _json_body_fields(operation) -> list[str]:
    """The top-level properties of the operation's JSON body (none without one)."""
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = operation.schema.raw_schema["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return list(schema.get("properties", {}))


def _hostile_variants(case, ids: dict) -> list:
    """Copies of a valid case with one value replaced by a hostile one (path parameters naming existing rows)."""
    operation = case.operation
    path_parameters = _existing_path_parameters(case, ids) or dict(case.path_parameters or {})
    body = case.body if isinstance(case.body, dict) else {}
    variants = []

    def variant(*, path=None, query=None, json_body: Any = None) -> None:
        fields = json_body if json_body is not None else body
        variants.append(operation.Case(
            method=case.method, path_parameters=path or path_parameters, query=query or {},
            body=fields if _json_body_fields(operation) else case.body,
            media_type="application/json" if _json_body_fields(operation) else case.media_type))

    for parameter in operation.definition.raw.get("parameters", []):
        if parameter["in"] == "query":
            for value in HOSTILE_TEXT:
                variant(query={parameter["name"]: value})
        elif parameter["in"] == "path":
            for value in HOSTILE_IDS:
                variant(path={**path_parameters, parameter["name"]: value})
    for name in _json_body_fields(operation):
        for value in HOSTILE_JSON:
            variant(json_body={**body, name: value})
    return variants


# On PostgreSQL only in `make test` (its strict types turn more bad input into errors than SQLite does); the resume
# test takes the embedded run instead (tests/conftest.py).
@pytest.mark.one_mode
def test_no_input_the_schema_describes_gets_a_server_error(api_schema, fuzz_world, wsgi_app):
    # Schemathesis' own pytest integration (from_fixture/parametrize) does not run under this pytest; this is its
    # loop: one Hypothesis test per operation, with the phases and settings of the schema's config.
    from schemathesis import GenerationMode
    from schemathesis.generation.meta import TestPhase
    from schemathesis.pytest.lazy import get_all_tests

    roles, ids = fuzz_world
    anonymous, *signed_in = roles
    failures: dict[tuple, str] = {}  # (operation, query parameters, exception) -> the first case that raised it
    calls = 0
    mutated: set[str] = set()
    first_valid: dict[str, object] = {}  # operation -> its first case generated valid

    def call(variant, role_names) -> list[int]:
        nonlocal calls
        statuses = []
        for role in role_names:
            calls += 1
            status, failure = _call(variant, role=role, headers={**(variant.headers or {}), **roles[role]},
                                    app=wsgi_app)
            statuses.append(status)
            if failure:
                key = (variant.operation.label, tuple(sorted(variant.query or {})), failure.strip().splitlines()[-1])
                failures.setdefault(key, failure)
        return statuses

    def mutate(case) -> None:
        # As the annotator (whose vote the votes/{id} paths name) and the admin (who may call everything).
        mutated.add(case.operation.label)
        for variant in _hostile_variants(case, ids):
            call(variant, [signed_in[0], signed_in[-1]])

    def call_as_each_role(case):
        # The generated case as admin (and anonymously when it is a random one: every role is refused alike
        # before its input is read); with a path id, once more as every role on a row that exists.
        statuses = call(case, [signed_in[-1], *([anonymous] if case.meta.phase.name == TestPhase.FUZZING else [])])
        existing = _existing_path_parameters(case, ids)
        statuses += call(case if existing is None else case.operation.Case(
            method=case.method, path_parameters=existing, query=case.query, headers=case.headers, body=case.body,
            media_type=case.media_type), signed_in[:-1] if existing is None else signed_in)
        # The hostile values go into the first valid case the API let through its validation (so that they reach
        # the queries behind it), else into the first valid case.
        if case.operation.label in mutated or case.meta.generation.mode != GenerationMode.POSITIVE:
            return
        first_valid.setdefault(case.operation.label, case)
        if any(status < 400 or status in (404, 409, 410) for status in statuses):
            mutate(case)

    operations = 0
    for result in get_all_tests(schema=api_schema, test_func=call_as_each_role, settings=None, given_kwargs={}):
        operation, test = result.ok()
        operations += 1
        test()
        if operation.label not in mutated:
            mutate(first_valid[operation.label])
    print(f"{operations} operations, {calls} calls")
    assert operations > 30 and calls > operations * 20
    assert len(mutated) == operations
    assert not failures, f"{len(failures)} server errors:\n\n" + "\n\n".join(failures.values())


BIG = 2**63  # one past the largest id
REGRESSIONS = [  # what the fuzzing found answering 500 (the database or Python failing on it), and the answer now
    ("get", "/api/v1/map/points/?month=9999-12", None, 400),  # ValueError: year 10000 is out of range
    ("get", "/api/v1/map/density/?month=9999-12", None, 400),
    ("get", "/api/v1/jobs/?kind=a%00b", None, 400),  # PostgreSQL: text fields cannot contain NUL (0x00) bytes
    ("get", "/api/v1/jobs/?state=a%00b", None, 400),
    ("get", "/api/v1/predictions/?network=a%00b", None, 400),
    ("get", "/api/v1/models/?network=a%00b", None, 400),
    ("get", f"/api/v1/jobs/?limit={BIG}", None, 200),  # PostgreSQL: bigint out of range; SQLite: datatype mismatch
    ("get", f"/api/v1/predictions/?imagette={BIG}", None, 400),  # SQLite: Python int too large to convert
    ("get", f"/api/v1/predictions/?model_version={BIG}", None, 400),
    ("get", f"/api/v1/review/next/?exclude=1,{BIG}", None, 400),
    ("post", "/api/v1/votes/", {"imagette": BIG, "labels": ["sea_ice"]}, 400),
    ("post", "/api/v1/train/", {"hparams": {"lr": "a\x00"}}, 400),  # PostgreSQL: jsonb refuses \u0000
    ("post", "/api/v1/jobs/", {"kind": "train", "params": {"hparams": {"lr": "a\x00"}}}, 400),
]


def test_the_inputs_that_answered_500_answer_4xx(client_as, admin_user, monkeypatch):
    from eoplatform.celery import app
    from jobs.services import job_submit
    from training.models import ModelVersion, Snapshot

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)
    job_submit(kind="worker_check", params={}, created_by=admin_user)  # a page to cut: an empty list never queries
    snapshot = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={"train": 1.0},
                                       agreement_threshold=0.6)
    ModelVersion.objects.create(network="classifier", number=1, snapshot=snapshot, checkpoint="v1.pt",
                                is_active=True)  # the review queue reads only with an active model
    client = client_as(admin_user)
    answers = []
    for method, url, body, _expected in REGRESSIONS:
        with transaction.atomic():
            response = getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)
            transaction.set_rollback(True)
        answers.append(response.status_code)
    assert answers == [expected for *_, expected in REGRESSIONS], list(zip(REGRESSIONS, answers, strict=True))
    capped = client.get(f"/api/v1/jobs/?limit={BIG}").json()
    assert capped["count"] == len(capped["results"]) == 1
