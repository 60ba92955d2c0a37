"""Reconcile mode: full sync, stale replica deletion, dry run, API call efficiency."""

from __future__ import annotations

import json

import pytest

from rotation_handlers import replicate
from rotation_handlers.replication import MARKER_TAG_KEY, engine
from tests.replication.conftest import EU, SOURCE, TARGETS, US, Aws, secret


def seed(aws: Aws) -> dict[str, str]:
    values = {f"/app/p{i}": secret(f"p{i}") for i in range(12)}
    for name, value in values.items():
        aws.put(name, value, Tags=[{"Key": "n", "Value": name}])
    return values


def test_reconcile_creates_updates_and_deletes(aws: Aws) -> None:
    values = seed(aws)
    aws.put("/cdk/context/x", secret())  # /cdk/ is fine, only /cdk/exports/ is excluded
    aws.put("/cdk/exports/Stack/out", "x")  # always excluded
    aws.put("/cdk-bootstrap/hnb659fds/version", "21")  # always excluded
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"][EU] == {"created": 13}
    assert summary["parameters"] == 13
    assert aws.get("/cdk-bootstrap/hnb659fds/version", EU) is None
    for name, value in values.items():
        for region in TARGETS:
            assert aws.get(name, region)["Value"] == value

    # drift: a missed update, a missed tag removal, a missed delete, a replica with no source,
    # and an unmanaged parameter in the target (must survive)
    new = secret("new")
    aws.put("/app/p0", new, Overwrite=True)
    aws.ssm(SOURCE).remove_tags_from_resource(ResourceType="Parameter", ResourceId="/app/p1", TagKeys=["n"])
    aws.ssm(SOURCE).delete_parameter(Name="/app/p2")
    aws.put("/app/expired", secret(), region=EU, Tags=[{"Key": MARKER_TAG_KEY, "Value": SOURCE}])
    aws.put("/app/theirs", secret(), region=EU)
    aws.put("/app/other-source", secret(), region=EU, Tags=[{"Key": MARKER_TAG_KEY, "Value": "ap-south-1"}])
    aws.reset_counts()
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"][EU] == {"deleted": 2, "tagged": 1, "unchanged": 10, "updated": 1}
    assert summary["regions"][US] == {"deleted": 1, "tagged": 1, "unchanged": 10, "updated": 1}
    assert aws.get("/app/p0", EU)["Value"] == new
    assert "n" not in aws.tags("/app/p1", US)
    assert aws.get("/app/p2", EU) is None and aws.get("/app/expired", EU) is None
    assert aws.get("/app/theirs", EU) is not None and aws.get("/app/other-source", EU) is not None
    assert {(c["parameter"], c["region"]) for c in summary["changes"]} >= {("/app/p0", EU), ("/app/p2", US)}
    assert aws.writes(EU) == 4 and aws.writes(US) == 3


def test_reconcile_in_sync_costs_only_batched_reads(aws: Aws) -> None:
    seed(aws)
    replicate.reconcile_handler({}, None)
    aws.reset_counts()
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"] == {EU: {"unchanged": 12}, US: {"unchanged": 12}}
    assert summary["drifted"] == {EU: 0, US: 0} and summary["complete"] is True
    assert aws.writes(EU) == aws.writes(US) == 0
    assert aws.count(SOURCE, "PutParameter") == 1  # the state parameter (run number, slice cursor)
    for region in (SOURCE, *TARGETS):
        # moto pages DescribeParameters by 10 (AWS by 50); values 10 names a call; tags in one page
        assert aws.count(region, "DescribeParameters") == 2
        assert aws.count(region, "GetParameters") == 2
        assert aws.count(region, "GetResources") == 1
        assert aws.count(region, "ListTagsForResource") == 0
    deep = summary["deepCheck"]["parameters"]  # this run's slice: histories, no tags
    assert aws.count(EU, "GetParameterHistory") == deep
    assert aws.count(SOURCE, "GetParameterHistory") == deep
    assert aws.count() == 3 * 5 + 2 + deep * 3


def test_reconcile_per_parameter_tags_when_bulk_tags_off(aws: Aws, env: pytest.MonkeyPatch) -> None:
    env.setenv("RECONCILE_BULK_TAGS", "false")
    seed(aws)
    replicate.reconcile_handler({}, None)
    aws.ssm(SOURCE).add_tags_to_resource(
        ResourceType="Parameter", ResourceId="/app/p4", Tags=[{"Key": "new", "Value": "1"}]
    )
    aws.reset_counts()
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"][EU] == {"tagged": 1, "unchanged": 11}
    assert aws.count(EU, "GetResources") == 0
    assert aws.count(EU, "ListTagsForResource") >= 12
    assert aws.tags("/app/p4", US)["new"] == "1"


def test_labels_are_deep_checked_by_rotating_slice(aws: Aws, env: pytest.MonkeyPatch) -> None:
    env.setenv("RECONCILE_DEEP_EVERY", "3")
    seed(aws)
    replicate.reconcile_handler({}, None)
    # label drift in the targets: invisible to the cheap pass
    for name in ("/app/p1", "/app/p7", "/app/p10"):
        aws.ssm(EU).label_parameter_version(Name=name, ParameterVersion=1, Labels=["stray"])
    checked = 0
    for _ in range(3):
        summary = replicate.reconcile_handler({}, None)
        checked += summary["deepCheck"]["parameters"]
        assert summary["drifted"] == {EU: 0, US: 0}
    assert checked == 12  # every parameter once in 3 runs
    for name in ("/app/p1", "/app/p7", "/app/p10"):
        assert aws.labels(name, EU) == {}


def test_full_run_deep_checks_everything_and_leaves_the_slices_alone(
    aws: Aws, env: pytest.MonkeyPatch
) -> None:
    from rotation_handlers.replication.config import load_config
    from rotation_handlers.replication.engine import Engine
    from rotation_handlers.replication.reconcile import load_state, reconcile

    env.setenv("RECONCILE_DEEP_EVERY", "3")
    seed(aws)
    replicate.reconcile_handler({}, None)
    config = load_config(__import__("os").environ)
    before = load_state(Engine(config))
    for name in ("/app/p1", "/app/p7", "/app/p10"):
        aws.ssm(EU).label_parameter_version(Name=name, ParameterVersion=1, Labels=["stray"])
    summary = reconcile(Engine(config), full=True)
    assert summary["deepCheck"]["parameters"] == 12  # all of them, in one run
    for name in ("/app/p1", "/app/p7", "/app/p10"):
        assert aws.labels(name, EU) == {}
    assert load_state(Engine(config)) == before  # the scheduled runs' position is untouched


def test_stops_before_the_deadline_and_resumes(aws: Aws, env: pytest.MonkeyPatch) -> None:
    from rotation_handlers.replication.config import load_config
    from rotation_handlers.replication.engine import Engine
    from rotation_handlers.replication.reconcile import load_state, reconcile

    env.setenv("RECONCILE_DEEP_EVERY", "1")  # every parameter is in the slice
    env.setenv("RECONCILE_CONCURRENCY", "1")  # chunks of 4
    values = seed(aws)
    replicate.reconcile_handler({}, None)
    aws.ssm(SOURCE).delete_parameter(Name="/app/p0")  # a stale replica: handled before anything else
    config = load_config(__import__("os").environ)
    ticks = iter(range(100))
    summary = reconcile(Engine(config), deadline=6, clock=lambda: next(ticks))  # one tick a parameter
    assert summary["complete"] is False
    assert summary["regions"][EU]["deleted"] == 1  # the delete was not starved
    state = load_state(Engine(config))
    assert state.run == 1 and state.cursor  # same slice, with the position reached
    summary = replicate.reconcile_handler({}, None)
    assert summary["complete"] is True and summary["deepCheck"]["resumedAfter"] == state.cursor
    assert summary["deepCheck"]["parameters"] == len([n for n in values if n > state.cursor])
    assert load_state(Engine(config)).run == 2


@pytest.mark.parametrize("how", ["event", "env"])
def test_dry_run_changes_nothing(aws: Aws, env: pytest.MonkeyPatch, how: str) -> None:
    values = seed(aws)
    aws.put("/app/stale", secret(), region=US, Tags=[{"Key": MARKER_TAG_KEY, "Value": SOURCE}])
    aws.reset_counts()
    if how == "env":
        env.setenv("RECONCILE_DRY_RUN", "true")
        summary = replicate.reconcile_handler({}, None)
    else:
        summary = replicate.reconcile_handler({"dryRun": True}, None)
    assert summary["dryRun"] is True
    assert aws.writes() == 0
    assert summary["regions"][EU] == {"created": 12}
    assert summary["regions"][US] == {"created": 12, "deleted": 1}
    assert len(summary["changes"]) == 25
    assert {"region": US, "parameter": "/app/stale", "action": "deleted", "reason": "source deleted"} in [
        {k: c[k] for k in ("region", "parameter", "action", "reason")} for c in summary["changes"]
    ]
    text = json.dumps(summary)
    assert not any(v in text for v in values.values())
    assert aws.get("/app/p0", EU) is None and aws.get("/app/stale", US) is not None


def test_reconcile_respects_paths(aws: Aws, env: pytest.MonkeyPatch) -> None:
    env.setenv("REPLICATE_PATHS", "/team")
    env.setenv("EXCLUDE_PATHS", "/team/private")
    aws.put("/team/a", secret())
    aws.put("/team/private/b", secret())
    aws.put("/teamster", secret())
    aws.put("/other/c", secret())
    summary = replicate.reconcile_handler({}, None)
    assert summary["parameters"] == 1
    assert aws.get("/team/a", EU) is not None
    assert aws.get("/team/private/b", EU) is None and aws.get("/teamster", EU) is None


def test_reconcile_region_failure_reported(aws: Aws) -> None:
    seed(aws)
    aws.inject(US, "PutParameter", "AccessDeniedException")
    with pytest.raises(engine.ReplicationError, match="us-west-2") as info:
        replicate.reconcile_handler({}, None)
    assert "eu-west-1" not in str(info.value)
    assert aws.get("/app/p5", EU) is not None


def test_every_reconcile_call_takes_a_token_from_its_regions_budget(
    aws: Aws, env: pytest.MonkeyPatch
) -> None:
    from collections import Counter

    from rotation_handlers.replication.budget import RegionBudget

    taken: Counter[str] = Counter()

    class Recording(RegionBudget):
        def take(self, region: str) -> None:
            taken[region] += 1
            super().take(region)

    env.setenv("RECONCILE_REQUESTS_PER_SECOND", "1000")
    env.setattr(replicate, "RegionBudget", Recording)
    seed(aws)
    aws.reset_counts()
    replicate.reconcile_handler({}, None)
    for region in (SOURCE, *TARGETS):
        assert taken[region] == aws.count(region) > 0


def test_compare_is_the_cheap_pass_alone(aws: Aws) -> None:
    """The library entry point an operator check uses: names only, no per-parameter read, no write."""
    import os

    from rotation_handlers.replication.config import load_config
    from rotation_handlers.replication.engine import Engine
    from rotation_handlers.replication.reconcile import compare

    seed(aws)
    replicate.reconcile_handler({}, None)
    aws.put("/app/p3", secret("edited"), region=US, Overwrite=True)
    aws.ssm(SOURCE).delete_parameter(Name="/app/p5")
    aws.reset_counts()
    result = compare(Engine(load_config(os.environ), dry_run=True))
    assert result.drifted == {EU: {}, US: {"/app/p3": "differs"}}
    assert result.stale == {EU: ["/app/p5"], US: ["/app/p5"]}
    assert aws.writes() == 0
    assert aws.count(op="GetParameterHistory") == aws.count(op="ListTagsForResource") == 0


def test_handler_stops_near_the_lambda_timeout(aws: Aws, env: pytest.MonkeyPatch) -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 30_000  # less than the margin: no time for any per-parameter work

    env.setenv("RECONCILE_TIME_MARGIN_SECONDS", "60")
    seed(aws)
    summary = replicate.reconcile_handler({}, Context())
    assert summary["complete"] is False and summary["drifted"] == {EU: 12, US: 12}
    assert aws.writes(EU) == aws.writes(US) == 0
    summary = replicate.reconcile_handler({}, None)  # the next run (no deadline) does the work
    assert summary["complete"] is True and summary["regions"][EU] == {"created": 12}


def test_deadline_is_checked_between_parameters_inside_a_chunk(aws: Aws, env: pytest.MonkeyPatch) -> None:
    """A chunk stops starting parameters once the deadline passed; the next run finishes the job."""
    from rotation_handlers.replication.config import load_config
    from rotation_handlers.replication.engine import Engine
    from rotation_handlers.replication.reconcile import reconcile

    env.setenv("RECONCILE_CONCURRENCY", "1")  # one chunk of 4 parameters
    env.setenv("RECONCILE_DEEP_EVERY", "1")
    for i in range(4):
        aws.put(f"/app/c{i}", secret(f"c{i}"))
    now = {"t": 0}

    def tick(model: object, **_: object) -> None:  # time passes as the writes happen
        now["t"] += 1

    aws.on(aws.ssm(EU), "before-call.ssm.PutParameter", tick)
    config = load_config(__import__("os").environ)
    summary = reconcile(Engine(config), deadline=2, clock=lambda: now["t"])
    assert summary["complete"] is False
    assert aws.count(EU, "PutParameter") == 2  # the 3rd and 4th parameters were not started
    summary = replicate.reconcile_handler({}, None)
    assert summary["complete"] is True
    assert summary["regions"][EU] == {"created": 2, "unchanged": 2}


def test_state_is_saved_when_the_standard_parameter_quota_is_full(aws: Aws, env: pytest.MonkeyPatch) -> None:
    """A region at its Standard-parameter quota refuses to create another Standard parameter
    (ParameterLimitExceeded; "Managing parameter tiers",
    https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html).
    The reconcile state is still saved: its position must never be lost."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ssm.models import ssm_backends

    def quota_full(params: dict, **_: object) -> None:  # type: ignore[type-arg]
        body = json.loads(params["body"] or b"{}")
        exists = ssm_backends[DEFAULT_ACCOUNT_ID][SOURCE].get_parameter(body["Name"]) is not None
        if body.get("Tier", "Standard") == "Standard" and not exists:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "ParameterLimitExceeded", "Message": "quota"}}, "PutParameter"
            )

    seed(aws)
    aws.on(aws.ssm(SOURCE), "before-call.ssm.PutParameter", quota_full)
    summary = replicate.reconcile_handler({}, None)
    assert summary["complete"] is True
    state = aws.get("/parameter-replicator/reconcile-state", SOURCE)
    assert state is not None and json.loads(state["Value"])["run"] == 1
    replicate.reconcile_handler({}, None)  # and saved again over it
    assert json.loads(aws.get("/parameter-replicator/reconcile-state", SOURCE)["Value"])["run"] == 2


def short_describe_pages(aws: Aws, region: str, size: int) -> None:
    """Make ``region`` answer DescribeParameters with ``size`` results a page (moto's tokens are offsets)."""
    offset = {"n": 0}

    def remember(params: dict, **_: object) -> None:  # type: ignore[type-arg]
        body = json.loads(params["body"] or b"{}")
        offset["n"] = int(body.get("NextToken") or 0)

    def truncate(parsed: dict, **_: object) -> None:  # type: ignore[type-arg]
        found = parsed.get("Parameters") or []
        if len(found) > size or parsed.get("NextToken"):
            parsed["Parameters"] = found[:size]
            parsed["NextToken"] = str(offset["n"] + min(size, len(found)))

    aws.on(aws.ssm(region), "before-call.ssm.DescribeParameters", remember)
    aws.on(aws.ssm(region), "after-call.ssm.DescribeParameters", truncate)


def test_short_describe_pages_do_not_multiply_value_reads(aws: Aws) -> None:
    """DescribeParameters may return fewer results than MaxResults, with a NextToken
    ("MaxResults ... The service may return fewer results", DescribeParameters API reference,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeParameters.html).
    Values are still read 10 names per GetParameters call, whatever the page sizes."""
    for i in range(20):
        aws.put(f"/app/s{i:02d}", secret(f"s{i}"))
    replicate.reconcile_handler({}, None)

    for region in (SOURCE, *TARGETS):
        short_describe_pages(aws, region, 3)
    aws.reset_counts()
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"][EU].get("unchanged") == 20
    for region in (SOURCE, *TARGETS):
        assert aws.count(region, "DescribeParameters") >= 7  # the short pages did happen
        assert aws.count(region, "GetParameters") == 2


def test_other_tagged_parameters_in_a_target_are_not_paged_through(aws: Aws) -> None:
    """In a target only the replicas from this source matter: tag:GetResources is asked for the
    marker tag (TagFilters; GetResources API reference,
    https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html)."""
    for i in range(5):
        aws.put(f"/app/r{i}", secret(f"r{i}"), Tags=[{"Key": "team", "Value": "a"}])
    for i in range(250):  # someone else's tagged parameters in the target region
        aws.put(f"/other/p{i:03d}", "x", region=EU, Tags=[{"Key": "team", "Value": "b"}])
    replicate.reconcile_handler({}, None)
    aws.reset_counts()
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"][EU] == {"unchanged": 5}
    assert aws.count(EU, "GetResources") == 1


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: object) -> list[bytes]:
        return [self.data]


def test_budget_counts_botocore_retries(aws: Aws, env: pytest.MonkeyPatch) -> None:
    """botocore's standard retry mode retries a throttled call by itself (up to 3 attempts;
    "Retries" in the Boto3 guide, https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html):
    each attempt is a request Parameter Store counts, so each takes a token."""
    from collections import Counter

    from botocore.awsrequest import AWSResponse

    from rotation_handlers.replication.budget import RegionBudget

    taken: Counter[str] = Counter()

    class Recording(RegionBudget):
        def take(self, region: str) -> None:
            taken[region] += 1
            super().take(region)

    state = {"throttled": 0}

    def throttle_once(request: object, **_: object) -> object:
        if state["throttled"]:
            return None
        state["throttled"] += 1
        body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        return AWSResponse("https://ssm.eu-west-1.amazonaws.com/", 400, {}, _Body(body))

    env.setenv("RECONCILE_REQUESTS_PER_SECOND", "1000")
    env.setattr(replicate, "RegionBudget", Recording)
    seed(aws)
    replicate.reconcile_handler({}, None)
    aws.reset_counts()
    taken.clear()
    aws.ssm(EU).meta.events.register_first("before-send.ssm.DescribeParameters", throttle_once)
    try:
        replicate.reconcile_handler({}, None)
    finally:
        aws.ssm(EU).meta.events.unregister("before-send.ssm.DescribeParameters", throttle_once)
    assert state["throttled"] == 1
    assert taken[EU] == aws.count(EU) + 1  # the API calls, and botocore's retry of one of them
    assert taken[SOURCE] == aws.count(SOURCE)


def test_throttling_backoff_is_cut_at_the_deadline(aws: Aws, env: pytest.MonkeyPatch) -> None:
    """A worker throttled in a long backoff must not sleep past the reconcile deadline: it stops,
    the pair is not reported failed, and the position reached is saved. Throttling is injected with
    a botocore hook answering ThrottlingException, as Parameter Store does when a request quota is
    exceeded ("AWS Systems Manager endpoints and quotas", https://docs.aws.amazon.com/general/latest/gr/ssm.html)."""
    from botocore.exceptions import ClientError

    from rotation_handlers.replication.config import load_config
    from rotation_handlers.replication.engine import Engine
    from rotation_handlers.replication.reconcile import load_state, reconcile

    env.setenv("RECONCILE_DEEP_EVERY", "1")  # every parameter is deep-checked (histories)
    env.setenv("RECONCILE_CONCURRENCY", "1")
    env.setenv("REPLICATION_BACKOFF_BASE_SECONDS", "30")  # long backoffs
    env.setenv("REPLICATION_BACKOFF_MAX_SECONDS", "120")
    values = seed(aws)
    replicate.reconcile_handler({}, None)
    names = sorted(values)
    now = {"t": 0.0}

    def advance(seconds: float) -> None:
        now["t"] += seconds

    env.setattr(engine, "SLEEP", advance)

    def throttle(params: dict, **_: object) -> None:  # type: ignore[type-arg]
        if json.loads(params["body"] or b"{}").get("Name") == names[3]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "x")

    aws.on(aws.ssm(EU), "before-call.ssm.GetParameterHistory", throttle)
    config = load_config(__import__("os").environ)
    summary = reconcile(Engine(config), deadline=50.0, clock=lambda: now["t"])
    assert now["t"] <= 50.0  # no sleep went past the deadline
    assert summary["complete"] is False
    assert "failed" not in summary["regions"][EU]  # stopped, not failed: the next run does it
    state = load_state(Engine(config))
    assert state.run == 1 and state.cursor == names[2]  # the position before the throttled one


def no_clock_skew(env: pytest.MonkeyPatch) -> None:
    """Runs follow each other within seconds here (hours apart when scheduled): no skew allowance,
    or every replica written in the last minutes would be checked exactly again."""
    from rotation_handlers.replication import reconcile as module

    env.setattr(module, "CLOCK_SKEW", 0.0)


def test_in_sync_targets_are_read_by_name_not_listed(aws: Aws, env: pytest.MonkeyPatch) -> None:
    """Once a region was listed in full and found in sync, the next runs read its replicas by name
    (GetParameters, 10 names a call: "GetParameters", https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameters.html)
    and list nothing there: DescribeParameters pages may hold anything from 0 to MaxResults (50)
    results ("The service may return fewer results", MaxResults 1-50, DescribeParameters API reference,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeParameters.html)."""
    no_clock_skew(env)
    seed(aws)
    replicate.reconcile_handler({}, None)  # creates every replica (targets listed)
    replicate.reconcile_handler({}, None)  # the replicas written since the listing: listed again
    aws.reset_counts()
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"] == {EU: {"unchanged": 12}, US: {"unchanged": 12}}
    assert summary["listedTargets"] == []
    for region in TARGETS:
        assert aws.count(region, "DescribeParameters") == 0
        assert aws.count(region, "GetParameters") == 2
        assert aws.count(region, "GetResources") == 1
    assert aws.count(SOURCE, "DescribeParameters") == 2  # the source is always listed


@pytest.mark.parametrize(
    "edit",
    [
        {"Description": "edited in the target"},
        {"AllowedPattern": "^val-.*$"},
    ],
)
def test_attributes_edited_in_a_target_are_found_by_the_cheap_pass(
    aws: Aws, env: pytest.MonkeyPatch, edit: dict[str, str]
) -> None:
    """Description and pattern are not in GetParameters' answer; a replica changed in the target
    after the region was last listed (its LastModifiedDate is later) is checked exactly."""
    no_clock_skew(env)
    values = seed(aws)
    for i in range(30):  # 5 pages to list (moto: 10 a page): one exact check (4 calls) is cheaper
        aws.put(f"/app/q{i:02d}", secret(f"q{i}"))
    for _ in range(3):
        replicate.reconcile_handler({}, None)
    aws.reset_counts()
    aws.put("/app/p3", values["/app/p3"], region=EU, Overwrite=True, **edit)
    summary = replicate.reconcile_handler({}, None)
    assert aws.count(EU, "DescribeParameters") == 0  # found without listing the region
    assert summary["drifted"] == {EU: 1, US: 0}
    assert summary["regions"][EU] == {"unchanged": 41, "updated": 1}
    meta = aws.describe("/app/p3", EU)
    assert not meta.get("Description") and not meta.get("AllowedPattern")


def test_a_region_whose_listing_left_a_failure_is_listed_again(aws: Aws, env: pytest.MonkeyPatch) -> None:
    """A listing is trusted only if every pair it found there was settled: a replica that could not
    be fixed would otherwise look in sync to the runs that read the region by name."""
    no_clock_skew(env)
    values = seed(aws)
    for _ in range(3):
        replicate.reconcile_handler({}, None)
    aws.put("/app/p5", values["/app/p5"], region=EU, Overwrite=True, Description="edited in the target")
    injected = aws.inject(EU, "PutParameter", "AccessDeniedException", times=1)
    with pytest.raises(engine.ReplicationError):
        replicate.reconcile_handler({}, None)  # found (listed: 1 exact check > 2 pages), not fixed
    assert injected() == 1
    aws.reset_counts()
    summary = replicate.reconcile_handler({}, None)
    assert aws.count(EU, "DescribeParameters") == 2 and aws.count(US, "DescribeParameters") == 0
    assert summary["listedTargets"] == [EU]
    assert summary["regions"][EU] == {"unchanged": 11, "updated": 1}
    assert not aws.describe("/app/p5", EU).get("Description")


def test_a_hung_worker_does_not_keep_the_run_past_its_margin(aws: Aws, env: pytest.MonkeyPatch) -> None:
    """A parameter whose call does not come back (a worker that is slow for any reason) must not
    let Lambda kill the run at its timeout before the position is saved: half-way into the margin,
    the run saves its position and returns; the unfinished parameter is done by the next run."""
    import threading

    from rotation_handlers.replication.config import load_config
    from rotation_handlers.replication.engine import Engine
    from rotation_handlers.replication.reconcile import load_state, reconcile

    seed(aws)
    replicate.reconcile_handler({}, None)
    aws.ssm(SOURCE).delete_parameter(Name="/app/p0")  # a stale replica: the first work item
    now = {"t": 0.0}
    release = threading.Event()
    hung: list[threading.Thread] = []

    def hang(**_: object) -> None:
        hung.append(threading.current_thread())
        now["t"] = 1000.0  # time passes while this call hangs: deadline and margin are gone
        release.wait(30)

    aws.on(aws.ssm(EU), "before-call.ssm.DeleteParameter", hang)
    config = load_config(__import__("os").environ)  # margin 60 s: the run must be back by 80
    try:
        summary = reconcile(Engine(config), deadline=20.0, clock=lambda: now["t"])
        assert summary["complete"] is False
        assert aws.get("/app/p0", EU) is not None  # still hanging when the run returned
        assert load_state(Engine(config)).run == 1  # the position was saved: same slice
    finally:
        release.set()
        for thread in hung:
            thread.join(30)


def test_stale_and_unmanaged_targets_are_found_when_read_by_name(aws: Aws, env: pytest.MonkeyPatch) -> None:
    """Read by name, a target still shows its stale replicas (the replica tag index, read back with
    GetParameters) and a same-named parameter the replicator did not create (no marker: checked
    exactly, refused and reported as when the region is listed)."""
    no_clock_skew(env)
    seed(aws)
    for i in range(30):  # 5 pages to list (moto: 10 a page)
        aws.put(f"/app/q{i:02d}", secret(f"q{i}"))
    for _ in range(3):
        replicate.reconcile_handler({}, None)
    aws.ssm(SOURCE).delete_parameter(Name="/app/p0")
    aws.put("/app/theirs", secret("theirs"), region=EU)  # someone else's parameter in the target
    aws.put("/app/theirs", secret("ours"))  # ... and now a source parameter of that name
    aws.reset_counts()
    summary = replicate.reconcile_handler({}, None)
    assert summary["listedTargets"] == []
    assert aws.count(EU, "DescribeParameters") == aws.count(US, "DescribeParameters") == 0
    assert summary["stale"] == {EU: 1, US: 1}
    assert summary["regions"][EU] == {
        "deleted": 1,
        "skipped": 1,
        "unchanged": 41,
        "unmanaged-target-refused": 1,
    }
    assert summary["regions"][US] == {"created": 1, "deleted": 1, "unchanged": 41}
    assert aws.get("/app/p0", EU) is None and aws.get("/app/p0", US) is None


def test_deep_check_compares_the_attributes_a_name_read_cannot_see(aws: Aws, env: pytest.MonkeyPatch) -> None:
    """Safety net: a target attribute changed without a later LastModifiedDate (simulated in moto's
    backend) is found by the deep check's history reads, which hold every attribute."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ssm.models import ssm_backends

    from rotation_handlers.replication.reconcile import slice_of

    no_clock_skew(env)
    env.setenv("RECONCILE_DEEP_EVERY", "2")
    seed(aws)
    for i in range(30):
        aws.put(f"/app/q{i:02d}", secret(f"q{i}"))
    for _ in range(3):  # the next run (run 3) reads the targets by name and deep-checks slice 1
        replicate.reconcile_handler({}, None)
    name = next(n for n in sorted(aws_names(aws)) if slice_of(n, 2) == 1)
    ssm_backends[DEFAULT_ACCOUNT_ID][EU]._parameters[name][-1].description = "changed quietly"
    summary = replicate.reconcile_handler({}, None)
    assert summary["listedTargets"] == [] and summary["drifted"] == {EU: 0, US: 0}
    assert summary["regions"][EU].get("updated") == 1
    assert not aws.describe(name, EU).get("Description")


def aws_names(aws: Aws) -> list[str]:
    pages = aws.ssm(SOURCE).get_paginator("describe_parameters").paginate()
    return [p["Name"] for page in pages for p in page["Parameters"] if p["Name"].startswith("/app/")]
