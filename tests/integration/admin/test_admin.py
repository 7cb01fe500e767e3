"""The admin: topologies by hand, by generator and from JSON (channel faults too);
watchpoints through the service; runs, snapshots and restores read-only."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

from cluster.core import topology as topo
from snapshots import admin as topology_admin
from snapshots import services
from snapshots.models import Restore, Run, Snapshot, Topology, Watchpoint
from tests.integration.api.support import (
    live_cluster,
    make_finished_snapshot,
    make_run,
    make_topology,
    make_user,
)

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/snapshots/topology/add/"


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(make_user("staff"))
    return client


def inline(prefix: str, rows: list[dict[str, Any]], initial: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {
        f"{prefix}-TOTAL_FORMS": len(rows),
        f"{prefix}-INITIAL_FORMS": initial,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{key}": value for key, value in row.items()})
    return data


def by_hand(
    name: str, processes: list[tuple[str, int]], channels: list[tuple[str, str]], workload: str = "bank"
) -> dict[str, Any]:
    return {
        "name": name,
        "workload": workload,
        "description": "",
        **inline("processes", [{"name": n, "initial_value": v} for n, v in processes]),
        **inline("channels", [{"src_name": s, "dst_name": d} for s, d in channels]),
    }


def as_stored(topology: Topology) -> dict[str, Any]:
    """The change form's POST for a stored topology, as the browser would send it unchanged."""
    processes = list(topology.processes.order_by("position", "id"))
    channels = list(topology.channels.select_related("src", "dst").order_by("id"))
    return {
        "name": topology.name,
        "workload": topology.workload,
        "description": topology.description,
        **inline(
            "processes",
            [
                {"id": p.pk, "topology": topology.pk, "name": p.name, "initial_value": p.initial_value}
                for p in processes
            ],
            initial=len(processes),
        ),
        **inline(
            "channels",
            [
                {
                    "id": c.pk,
                    "topology": topology.pk,
                    "src_name": c.src.name,
                    "dst_name": c.dst.name,
                    "delay_ms": c.delay_ms,
                    "loss": c.loss,
                    # An unticked box is not sent at all.
                    **({"reorder": "on"} if c.reorder else {}),
                }
                for c in channels
            ],
            initial=len(channels),
        ),
    }


def errors_of(response: Any) -> str:
    return " ".join(
        str(e) for formset in response.context["inline_admin_formsets"] for e in formset.formset.non_form_errors()
    ) + " ".join(str(e) for e in response.context["adminform"].form.non_field_errors())


def test_staff_build_a_topology_by_hand_in_one_save(staff: Client) -> None:
    data = by_hand("tri", [("a", 10), ("b", 20), ("c", 30)], [("a", "b"), ("b", "c"), ("c", "a")])
    response = staff.post(ADD_URL, data)
    assert response.status_code == 302, errors_of(response)
    assert Topology.objects.get(name="tri").to_dict() == {
        "name": "tri",
        "workload": "bank",
        "processes": [{"name": "a", "balance": 10}, {"name": "b", "balance": 20}, {"name": "c", "balance": 30}],
        "channels": [["a", "b"], ["b", "c"], ["c", "a"]],
    }


@pytest.mark.parametrize(
    ("processes", "channels", "workload", "problem"),
    [
        ([("a", 1)], [], "bank", "at least 2 processes, this one has 1"),
        ([("a", 1), ("b", 1)], [("a", "b")], "bank", "b cannot reach a"),
        ([("a", 1), ("b", 1)], [("a", "a"), ("a", "b"), ("b", "a")], "bank", "channel a→a is a self-loop"),
        ([("a", 1), ("b", 1)], [("a", "b"), ("a", "b"), ("b", "a")], "bank", "channel a→b is defined twice"),
        ([("a", 1), ("b", 1)], [("a", "z"), ("b", "a")], "bank", "names unknown process z"),
        ([("a", -1), ("b", 1)], [("a", "b"), ("b", "a")], "bank", "a: balance must not be negative (-1)"),
        ([("a", 1), ("b", 1)], [("a", "b"), ("b", "a")], "token", "exactly one token in all, this topology has 2"),
        ([("a b", 1), ("b", 1)], [("a b", "b"), ("b", "a b")], "bank", "may hold only letters"),
    ],
)
def test_a_bad_topology_by_hand_is_refused_naming_the_problem(
    staff: Client, processes: list[tuple[str, int]], channels: list[tuple[str, str]], workload: str, problem: str
) -> None:
    response = staff.post(ADD_URL, by_hand("bad", processes, channels, workload))
    assert response.status_code == 200
    assert problem in errors_of(response)
    assert not Topology.objects.filter(name="bad").exists()


def test_duplicate_process_names_are_refused(staff: Client) -> None:
    response = staff.post(ADD_URL, by_hand("bad", [("a", 1), ("a", 1)], [("a", "a")]))
    assert response.status_code == 200 and not Topology.objects.filter(name="bad").exists()


def test_renaming_a_process_carries_its_channels(staff: Client) -> None:
    topology = make_topology("ring3")
    data = as_stored(topology)
    data["processes-0-name"] = "first"
    response = staff.post(f"/admin/snapshots/topology/{topology.pk}/change/", data)
    assert response.status_code == 302, errors_of(response)
    channels = topology.to_dict()["channels"]
    assert ["first", "p2"] in channels and ["p3", "first"] in channels


def test_deleting_a_process_deletes_its_channels(staff: Client) -> None:
    topology = services.import_topology(topo.complete(4, name="k4"))
    data = as_stored(topology)
    data["processes-3-DELETE"] = "on"
    response = staff.post(f"/admin/snapshots/topology/{topology.pk}/change/", data)
    assert response.status_code == 302, errors_of(response)
    assert topology.to_dict() == topo.complete(3, name="k4")


def test_a_change_that_breaks_the_graph_is_refused(staff: Client) -> None:
    topology = make_topology("ring3")
    data = as_stored(topology)
    for i in range(6):
        if data[f"channels-{i}-src_name"] == "p3":
            data[f"channels-{i}-DELETE"] = "on"
    response = staff.post(f"/admin/snapshots/topology/{topology.pk}/change/", data)
    assert "p3 cannot reach p1" in errors_of(response)
    assert topology.channels.count() == 6


@pytest.mark.parametrize(
    ("form", "processes", "channels"),
    [
        ({"kind": "ring", "processes": 5}, 5, 5),
        ({"kind": "ring2", "processes": 5}, 5, 10),
        ({"kind": "line", "processes": 4}, 4, 6),
        ({"kind": "complete", "processes": 4}, 4, 12),
        ({"kind": "star", "processes": 6}, 6, 10),
        ({"kind": "grid", "rows": 2, "cols": 3}, 6, 14),
        ({"kind": "random", "processes": 10, "degree": 3, "seed": 4}, 10, 30),
    ],
)
def test_the_generator_makes_every_kind(staff: Client, form: dict[str, Any], processes: int, channels: int) -> None:
    response = staff.post("/admin/snapshots/topology/generate/", {"workload": "bank", "balance": 50, **form})
    assert response.status_code == 302, response.context["form"].errors
    topology = Topology.objects.get()
    assert (topology.processes.count(), topology.channels.count()) == (processes, channels)
    assert topo.validate(topology.to_dict())
    assert response["Location"] == f"/admin/snapshots/topology/{topology.pk}/change/"


def test_a_generated_token_topology_has_exactly_one_token(staff: Client) -> None:
    staff.post(
        "/admin/snapshots/topology/generate/", {"kind": "ring", "processes": 4, "workload": "token", "balance": 0}
    )
    assert [p["tokens"] for p in Topology.objects.get().to_dict()["processes"]] == [1, 0, 0, 0]


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"kind": "complete", "processes": 500}, "at most 141 processes"),
        ({"kind": "ring", "processes": 1001}, "less than or equal to 1000"),
        ({"kind": "grid", "rows": 40, "cols": 40}, "has 1600 processes"),
        ({"kind": "random", "processes": 5, "degree": 9}, "too many channels"),
    ],
)
def test_the_generator_refuses_what_it_cannot_make(staff: Client, form: dict[str, Any], problem: str) -> None:
    response = staff.post("/admin/snapshots/topology/generate/", {"workload": "bank", "balance": 1, **form})
    assert response.status_code == 200 and problem in str(response.context["form"].errors)


def test_a_1000_process_topology_is_generated_and_shown_without_inlines(staff: Client) -> None:
    started = time.monotonic()
    response = staff.post(
        "/admin/snapshots/topology/generate/",
        {"kind": "random", "processes": 1000, "degree": 3, "seed": 1, "workload": "bank", "balance": 100},
    )
    assert response.status_code == 302
    topology = Topology.objects.get()
    assert (topology.processes.count(), topology.channels.count()) == (1000, 3000)
    page = staff.get(response["Location"])
    assert page.status_code == 200
    assert page.context["inline_admin_formsets"] == []
    assert b"too many to edit row by row" in page.content
    graph = json.loads(page.content.split(b'id="topology-graph" type="application/json">')[1].split(b"</script>")[0])
    assert len(graph["channels"]) == 3000
    assert time.monotonic() - started < 30


def test_a_large_topology_can_still_be_renamed_but_not_broken(staff: Client) -> None:
    topology = services.import_topology(topo.ring(300, name="big"))
    url = f"/admin/snapshots/topology/{topology.pk}/change/"
    renamed = staff.post(url, {"name": "bigger", "workload": "bank", "description": "many"})
    assert renamed.status_code == 302
    refused = staff.post(url, {"name": "bigger", "workload": "token", "description": ""})
    assert "exactly one token in all" in errors_of(refused)


def test_the_change_page_draws_the_graph_with_the_vendored_library(staff: Client) -> None:
    topology = make_topology("ring3")
    page = staff.get(f"/admin/snapshots/topology/{topology.pk}/change/").content.decode()
    assert 'src="/static/vendor/cytoscape/cytoscape.min.js"' in page
    assert 'src="/static/admin-preview/preview.js"' in page
    assert finders.find("vendor/cytoscape/cytoscape.min.js") and finders.find("admin-preview/preview.js")
    assert '"channels": [["p1", "p2"]' in page
    assert "https://" not in page.split("<body")[0]


def test_export_is_what_the_cli_prints(staff: Client) -> None:
    topology = make_topology("ring3")
    response = staff.get(f"/admin/snapshots/topology/{topology.pk}/export/")
    assert response["Content-Disposition"] == 'attachment; filename="ring3.json"'
    cli = io.StringIO()
    call_command("topology", "export", "ring3", stdout=cli)
    assert response.content.decode() == cli.getvalue()


def test_import_reads_what_export_writes(staff: Client) -> None:
    data = topo.star(5, name="star5")
    upload = io.BytesIO(json.dumps(data).encode())
    upload.name = "star5.json"
    response = staff.post("/admin/snapshots/topology/import/", {"file": upload})
    assert response.status_code == 302
    assert Topology.objects.get(name="star5").to_dict() == data


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{nope", "this is not valid JSON"),
        ("", "choose a file or paste the JSON"),
        ('{"name": "x", "processes": [{"name": "a"}], "channels": []}', "at least 2 processes"),
        ("[1, 2]", "a topology must be a JSON object"),
    ],
)
def test_import_refuses_bad_json_naming_the_problem(staff: Client, text: str, problem: str) -> None:
    response = staff.post("/admin/snapshots/topology/import/", {"text": text})
    assert response.status_code == 200 and problem in str(response.context["form"].errors)


def test_import_with_replace_keeps_the_topology_and_its_runs(staff: Client) -> None:
    topology = make_topology("ring3")
    run = make_run(topology)
    text = json.dumps(topo.complete(3, name="ring3"))
    refused = staff.post("/admin/snapshots/topology/import/", {"text": text})
    assert "already exists" in str(refused.context["form"].errors)
    response = staff.post("/admin/snapshots/topology/import/", {"text": text, "replace": "on"})
    assert response.status_code == 302
    assert Topology.objects.get(pk=topology.pk).to_dict() == topo.complete(3, name="ring3")
    assert Run.objects.get(pk=run.pk).topology_id == topology.pk


def test_runs_and_snapshots_are_read_only(staff: Client) -> None:
    run = make_run(make_topology())
    snapshot = make_finished_snapshot(run)
    run_page = staff.get(f"/admin/snapshots/run/{run.pk}/change/")
    assert run_page.status_code == 200 and b'name="_save"' not in run_page.content
    snapshot_page = staff.get(f"/admin/snapshots/snapshot/{snapshot.pk}/change/")
    assert b"p1\xe2\x86\x92p2" in snapshot_page.content and b"?format=csv" in snapshot_page.content
    assert staff.post(f"/admin/snapshots/run/{run.pk}/change/", {"status": "stopped"}).status_code == 403
    assert staff.get("/admin/snapshots/run/add/").status_code == 403
    assert staff.post(f"/admin/snapshots/snapshot/{snapshot.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Run.objects.get(pk=run.pk).status == "running" and Snapshot.objects.filter(pk=snapshot.pk).exists()


@pytest.mark.parametrize(("role", "status"), [("viewer", 302), ("operator", 302), ("staff", 200)])
def test_only_staff_reach_the_admin(role: str, status: int) -> None:
    client = Client()
    client.force_login(make_user(role))
    assert client.get(ADD_URL).status_code == status


def test_the_inline_limit_counts_processes_and_channels() -> None:
    assert not topology_admin.is_large(make_topology("ring3"))
    assert topology_admin.is_large(make_topology("ring-300", 300))


# --- channel faults, the workloads beyond bank and token, watchpoints, restores -----------


def test_a_channel_row_holds_its_fault_settings(staff: Client) -> None:
    data = by_hand("faulty", [("a", 10), ("b", 20)], [("a", "b"), ("b", "a")])
    data.update({"channels-0-delay_ms": "150", "channels-0-reorder": "on", "channels-1-loss": "0.2"})
    response = staff.post(ADD_URL, data)
    assert response.status_code == 302, errors_of(response)
    topology = Topology.objects.get(name="faulty")
    assert topology.to_dict()["channels"] == [["a", "b", {"delay_ms": 150, "reorder": True}], ["b", "a", {"loss": 0.2}]]
    page = staff.get(f"/admin/snapshots/topology/{topology.pk}/change/").content.decode()
    assert 'name="channels-0-delay_ms" value="150"' in page and 'name="channels-1-loss" value="0.2"' in page

    # Clearing the settings makes the channel plain again; untouched rows keep theirs.
    stored = as_stored(topology)
    stored.update({"channels-0-delay_ms": "0"})
    stored.pop("channels-0-reorder")
    assert staff.post(f"/admin/snapshots/topology/{topology.pk}/change/", stored).status_code == 302
    assert topology.to_dict()["channels"] == [["a", "b"], ["b", "a", {"loss": 0.2}]]


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"channels-0-loss": "0.95"}, "channel a→b: loss must be a fraction from 0 to 0.9"),
        ({"channels-0-delay_ms": "-1"}, "channel a→b: delay_ms must be a whole number of milliseconds"),
        ({"channels-0-delay_ms": "20000"}, "from 0 to 10000"),
    ],
)
def test_bad_fault_settings_are_refused_naming_the_channel(
    staff: Client, settings: dict[str, str], problem: str
) -> None:
    data = {**by_hand("bad", [("a", 1), ("b", 1)], [("a", "b"), ("b", "a")]), **settings}
    response = staff.post(ADD_URL, data)
    assert response.status_code == 200
    shown = " ".join(str(e) for f in response.context["inline_admin_formsets"] for e in f.formset.errors)
    assert problem in shown, shown
    assert not Topology.objects.filter(name="bad").exists()


def test_the_new_workloads_can_be_chosen_built_and_generated(staff: Client) -> None:
    page = staff.get(ADD_URL).content.decode()
    assert '<option value="diffusion">' in page and '<option value="philosophers">' in page
    data = by_hand("spread", [("a", 30), ("b", 0)], [("a", "b"), ("b", "a")], workload="diffusion")
    assert staff.post(ADD_URL, data).status_code == 302
    assert Topology.objects.get(name="spread").to_dict()["processes"] == [
        {"name": "a", "jobs": 30},
        {"name": "b", "jobs": 0},
    ]
    response = staff.post(
        "/admin/snapshots/topology/generate/",
        {"kind": "ring2", "processes": 5, "workload": "philosophers", "balance": 0, "name": "table"},
    )
    assert response.status_code == 302, response.context["form"].errors
    forks = [p["forks"] for p in Topology.objects.get(name="table").to_dict()["processes"]]
    assert sum(forks) == 5  # one fork between each two neighbours round the table


def test_philosophers_that_start_with_the_wrong_forks_are_refused(staff: Client) -> None:
    data = by_hand("table", [("a", 2), ("b", 0)], [("a", "b"), ("b", "a")], workload="philosophers")
    response = staff.post(ADD_URL, data)
    assert response.status_code == 200 and "a: forks must be 1, not 2" in errors_of(response)


@pytest.fixture
def live_run(redis_url: str) -> Any:
    """A run started for real (its meta in Redis, where the workers read watchpoints)."""
    with live_cluster():
        yield services.start_run(make_topology("ring3"), "bank", 1.0, seed=1)


WATCH_ADD_URL = "/admin/snapshots/watchpoint/add/"


def _new_watchpoint(run: Run, condition: str, **fields: Any) -> dict[str, Any]:
    given = {"process": "", "mode": "once", "cooldown_s": 5, "algorithm": "chandy-lamport", **fields}
    return {"run": run.pk, "condition": condition, **given}


def test_a_watchpoint_made_in_the_admin_is_checked_and_given_to_the_workers(staff: Client, live_run: Run) -> None:
    refused = staff.post(WATCH_ADD_URL, _new_watchpoint(live_run, "balance < < 10"))
    assert refused.status_code == 200
    error = " ".join(refused.context["adminform"].form.non_field_errors())
    assert "condition 'balance < < 10': col" in error, error
    assert b"balance &lt; &lt; 10" in refused.content and not Watchpoint.objects.exists()

    wrong_process = staff.post(WATCH_ADD_URL, _new_watchpoint(live_run, "balance < 10", process="p9"))
    assert "has no process 'p9'" in " ".join(wrong_process.context["adminform"].form.non_field_errors())

    made = staff.post(WATCH_ADD_URL, _new_watchpoint(live_run, "balance < 10", process="p2", algorithm="lai-yang"))
    assert made.status_code == 302
    wp = Watchpoint.objects.get()
    assert (wp.process, wp.kind, wp.algorithm, wp.created_by.username) == ("p2", "state", "lai-yang", "staff-user")
    published = services.store().run_meta(live_run.pk)["watchpoints"]
    assert [(w["id"], w["process"], w["condition"]) for w in published] == [(wp.pk, "p2", "balance < 10")]

    url = f"/admin/snapshots/watchpoint/{wp.pk}/change/"
    page = staff.get(url).content.decode()
    assert 'name="condition"' not in page and "balance &lt; 10" in page  # the condition is what it is
    changed = staff.post(url, {"mode": "every", "cooldown_s": "2", "algorithm": "chandy-lamport"})  # enabled: off
    assert changed.status_code == 302
    wp.refresh_from_db()
    assert (wp.mode, wp.cooldown_s, wp.enabled) == ("every", 2.0, False)
    assert services.store().run_meta(live_run.pk)["watchpoints"] == []  # the workers stop watching

    assert staff.post(f"/admin/snapshots/watchpoint/{wp.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Watchpoint.objects.exists()


def test_a_watchpoint_is_only_for_a_run_still_going(staff: Client, live_run: Run) -> None:
    stopped = make_run(live_run.topology, status=Run.Status.STOPPED)
    page = staff.get(WATCH_ADD_URL).content.decode()
    assert f'<option value="{live_run.pk}">' in page and f'<option value="{stopped.pk}">' not in page


def test_staff_without_the_control_permission_read_watchpoints_but_cannot_add_one(live_run: Run) -> None:
    user = make_user("staff", "reader")
    user.groups.clear()
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_run", "view_topology"]))
    client = Client()
    client.force_login(user)
    assert client.get("/admin/snapshots/watchpoint/").status_code == 200
    assert client.get(WATCH_ADD_URL).status_code == 403


def test_restores_are_read_only_and_snapshots_show_how_they_were_taken(staff: Client) -> None:
    run = make_run(make_topology())
    wp = Watchpoint.objects.create(run=run, process="p1", condition="balance < 95", kind="state")
    snapshot = make_finished_snapshot(run)
    snapshot.algorithm, snapshot.watchpoint, snapshot.trigger = "lai-yang", wp, "balance = 90"
    snapshot.properties = {
        "conservation": {"holds": True, "detail": "300 of 300 conserved"},
        "termination": {"holds": None, "detail": "the bank workload never ends"},
        "deadlock": {"holds": False, "detail": "nobody waits for anybody", "cycle": []},
    }
    snapshot.save()
    restore = Restore.objects.create(run=run, snapshot=snapshot, epoch=1, replayed_messages=1, dropped_frames=2)

    page = staff.get(f"/admin/snapshots/snapshot/{snapshot.pk}/change/").content.decode()
    for shown in ("Lai–Yang", "balance = 90", "300 of 300 conserved", "does not hold", "nobody waits for anybody"):
        assert shown in page, shown
    restores = staff.get("/admin/snapshots/restore/")
    assert restores.status_code == 200 and str(snapshot.pk) in restores.content.decode()
    detail = staff.get(f"/admin/snapshots/restore/{restore.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert staff.get("/admin/snapshots/restore/add/").status_code == 403
    assert staff.post(f"/admin/snapshots/restore/{restore.pk}/delete/", {"post": "yes"}).status_code == 403
    run_page = staff.get(f"/admin/snapshots/run/{run.pk}/change/").content.decode()
    assert f"from snapshot {snapshot.pk} (epoch 1; 1 replayed, 2 dropped)" in run_page
    assert "watchpoint" in run_page and "balance &lt; 95" in run_page
