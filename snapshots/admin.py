"""The admin: topologies built by hand, by generator or from JSON; watchpoints; runs,
snapshots and restores read-only.

A topology is judged as one whole by ``topology.validate`` (``topology.validate``):
the main form and the two inlines are put back together into the topology JSON before
anything is saved, so the admin refuses what the CLI and the API refuse, in the same
words. Channels name their processes by name, so a new topology — processes and
channels — is built in one save.

Big topologies (a generated 1000-process graph has thousands of channels) are not
edited row by row: past ``INLINE_LIMIT`` the inlines give way to the graph preview and
JSON export/import, and the form checks its changes against the stored graph.

A channel row also holds the channel's fault settings (delay, reorder, loss): the
defaults a run of the topology starts with. Watchpoints are made by
``snapshots.watchpoints.add_watchpoint`` itself, so the admin refuses what the API and the CLI
refuse, in the same words, and the workers learn of every change.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header

from cluster.core import safejson
from cluster.core import topology as topo
from cluster.core.wire import channel_id
from cluster.core.workloads import get_workload
from snapshots import services
from snapshots import watchpoints as watch
from snapshots.models import Channel, Process, Restore, Run, Snapshot, Topology, Watchpoint

INLINE_LIMIT = 500  # rows of processes plus channels shown as inlines (text inputs: light)
MAX_GENERATED_CHANNELS = 20_000
MAX_GENERATED_PROCESSES = 1000
SHOWN_RECORDS = 50


def _value_key(workload: str) -> str:
    return get_workload(workload).value_key


def is_large(topology: Topology | None) -> bool:
    if topology is None or topology.pk is None:
        return False
    return topology.processes.count() + topology.channels.count() > INLINE_LIMIT


def stored_spec(topology: Topology, name: str, workload: str) -> dict[str, Any]:
    """The stored graph under a (possibly new) name and workload."""
    key = _value_key(workload)
    return {
        **topology.to_dict(),
        "name": name,
        "workload": workload,
        "processes": [{"name": p.name, key: p.initial_value} for p in topology.processes.order_by("position", "id")],
    }


# --- the topology form and its inlines ----------------------------------------------------


class TopologyForm(forms.ModelForm):
    class Meta:
        model = Topology
        fields = ["name", "workload", "description"]

    # Set by the admin when the inlines are hidden: then the stored graph is what the
    # new name and workload must suit.
    check_stored_graph = False

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.check_stored_graph and "name" in data and "workload" in data:
            try:
                topo.validate(stored_spec(self.instance, data["name"], data["workload"]))
            except topo.TopologyError as exc:
                raise ValidationError(exc.problems) from None
        return data


class SiblingFormSet(BaseInlineFormSet):
    """An inline formset that can see the other inline of the same page."""

    def __init__(self, *args: Any, siblings: dict[type, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.siblings = siblings if siblings is not None else {}
        self.siblings[self.model] = self


class ProcessFormSet(SiblingFormSet):
    def renames(self) -> dict[str, str | None]:
        """Stored name → name after this save (None: deleted)."""
        result: dict[str, str | None] = {}
        for form in self.initial_forms:
            old = form.initial.get("name")
            if self._should_delete_form(form):
                result[old] = None
            elif form.cleaned_data.get("name", old) != old:
                result[old] = form.cleaned_data["name"]
        return result

    def processes(self, workload: str) -> list[dict[str, Any]]:
        key = _value_key(workload)
        return [
            {"name": form.cleaned_data["name"], key: form.cleaned_data.get("initial_value", 0)}
            for form in self.forms
            if form.cleaned_data and "name" in form.cleaned_data and not self._should_delete_form(form)
        ]


class ChannelForm(forms.ModelForm):
    """A channel as two process names (they may name processes added in this same save),
    and its fault settings."""

    src_name = forms.CharField(label="from", max_length=topo.MAX_NAME_LENGTH)
    dst_name = forms.CharField(label="to", max_length=topo.MAX_NAME_LENGTH)
    # Not required: an empty box is a plain channel, as in the topology JSON.
    delay_ms = forms.IntegerField(label="delay (ms)", required=False, initial=0)
    reorder = forms.BooleanField(label="reorder (non-FIFO)", required=False)
    loss = forms.FloatField(label="loss", required=False, initial=0.0)

    class Meta:
        model = Channel
        fields = ["delay_ms", "reorder", "loss"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.setdefault("src_name", self.instance.src.name)
            self.initial.setdefault("dst_name", self.instance.dst.name)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        given = {
            "delay_ms": data.get("delay_ms") or 0,
            "reorder": bool(data.get("reorder")),
            "loss": data.get("loss") or 0.0,
        }
        try:
            data.update(topo.validate_faults(given, channel_id(data.get("src_name"), data.get("dst_name"))))
        except topo.TopologyError as exc:
            raise ValidationError(exc.problems) from None
        return data

    def faults(self) -> dict[str, Any]:
        """The settings that differ from a plain channel, as the topology JSON gives them."""
        return topo.changed_faults({key: self.cleaned_data[key] for key in topo.NO_FAULTS})


class ChannelFormSet(SiblingFormSet):
    def clean(self) -> None:
        super().clean()
        processes = self.siblings.get(Process)
        if processes is None or any(self.errors) or not processes.is_valid():
            return
        renames = processes.renames()
        channels = []
        for form in self.forms:
            if not form.cleaned_data or self._should_delete_form(form):
                continue
            pair = [form.cleaned_data["src_name"], form.cleaned_data["dst_name"]]
            if form.instance.pk and not form.has_changed():
                # An untouched row follows its processes: renamed with them, and gone
                # with a deleted one (the database deletes it too).
                pair = [renames.get(n, n) for n in pair]
                if None in pair:
                    continue
            faults = form.faults()
            channels.append([*pair, faults] if faults else pair)
        workload = self.instance.workload
        spec = {
            "name": self.instance.name,
            "workload": workload,
            "processes": processes.processes(workload),
            "channels": channels,
        }
        try:
            topo.validate(spec)
        except topo.TopologyError as exc:
            raise ValidationError(exc.problems) from None

    def _with_processes(self, channel: Channel, form: forms.ModelForm) -> Channel:
        if not hasattr(self, "_by_name"):
            # Read once, after the process inline (saved first) has saved its rows.
            self._by_name = {p.name: p for p in self.instance.processes.all()}
        channel.src = self._by_name[form.cleaned_data["src_name"]]
        channel.dst = self._by_name[form.cleaned_data["dst_name"]]
        return channel

    def save_new(self, form: forms.ModelForm, commit: bool = True) -> Channel:
        channel = self._with_processes(form.save(commit=False), form)
        channel.topology = self.instance
        if commit:
            channel.save()
        return channel

    def save_existing(self, form: forms.ModelForm, obj: Channel, commit: bool = True) -> Channel:
        channel = self._with_processes(form.save(commit=False), form)
        if commit:
            channel.save()
        return channel


class ProcessInline(admin.TabularInline):
    model = Process
    formset = ProcessFormSet
    fields = ["name", "initial_value"]
    extra = 2


class ChannelInline(admin.TabularInline):
    model = Channel
    form = ChannelForm
    formset = ChannelFormSet
    fields = ["src_name", "dst_name", "delay_ms", "reorder", "loss"]
    extra = 2

    def get_queryset(self, request: HttpRequest) -> QuerySet[Channel]:
        return super().get_queryset(request).select_related("src", "dst")


# --- generator and import forms -----------------------------------------------------------

GENERATORS = [
    ("ring", "ring (one-way)"),
    ("ring2", "ring (two-way)"),
    ("line", "line (two-way)"),
    ("complete", "complete graph"),
    ("star", "star (two-way)"),
    ("grid", "grid (two-way)"),
    ("random", "random strongly connected"),
]


class GenerateForm(forms.Form):
    kind = forms.ChoiceField(choices=GENERATORS)
    processes = forms.IntegerField(
        min_value=2, max_value=MAX_GENERATED_PROCESSES, initial=10, required=False, help_text="every kind but grid"
    )
    rows = forms.IntegerField(
        min_value=1, max_value=MAX_GENERATED_PROCESSES, initial=3, required=False, help_text="grid"
    )
    cols = forms.IntegerField(
        min_value=1, max_value=MAX_GENERATED_PROCESSES, initial=3, required=False, help_text="grid"
    )
    degree = forms.FloatField(min_value=1, initial=2.0, required=False, help_text="random: average out-degree")
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=0, required=False, help_text="random")
    workload = forms.ChoiceField(choices=Topology.WORKLOADS, initial="bank")
    balance = forms.IntegerField(
        min_value=0,
        max_value=topo.MAX_VALUE,
        initial=100,
        label="initial value",
        help_text=(
            "bank: every process's starting balance; token: one token at the first process; diffusion: the jobs"
            " the first process starts with; philosophers: not used (forks are placed by the rule)"
        ),
    )
    name = forms.CharField(max_length=topo.MAX_NAME_LENGTH, required=False, help_text="default: kind and size")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        if kind == "grid":
            rows, cols = data.get("rows"), data.get("cols")
            if not rows or not cols:
                raise ValidationError("a grid needs rows and cols")
            n = rows * cols
            if n < 2 or n > MAX_GENERATED_PROCESSES:
                raise ValidationError(f"a grid of {rows}×{cols} has {n} processes; give 2 to {MAX_GENERATED_PROCESSES}")
        elif kind:
            n = data.get("processes") or 0
            if n < 2:
                raise ValidationError("give the number of processes (2 or more)")
            if kind == "complete" and n * (n - 1) > MAX_GENERATED_CHANNELS:
                raise ValidationError(
                    f"a complete graph on {n} processes has {n * (n - 1)} channels; at most"
                    f" {MAX_GENERATED_CHANNELS} are allowed, so at most 141 processes"
                )
            if kind == "random":
                degree = data.get("degree") or 2.0
                if degree > n - 1 or degree * n > MAX_GENERATED_CHANNELS:
                    raise ValidationError(
                        f"an average degree of {degree:g} on {n} processes is too many channels"
                        f" (at most {n - 1:g} per process and {MAX_GENERATED_CHANNELS} in all)"
                    )
        return data

    def topology(self) -> dict[str, Any]:
        d = self.cleaned_data
        common = {"workload": d["workload"], "value": d["balance"], "name": d["name"] or None}
        n = d.get("processes") or 0
        match d["kind"]:
            case "ring":
                return topo.ring(n, **common)
            case "ring2":
                return topo.ring(n, two_way=True, **{**common, "name": d["name"] or f"ring2-{n}"})
            case "line":
                return topo.line(n, **common)
            case "complete":
                return topo.complete(n, **common)
            case "star":
                return topo.star(n, **common)
            case "grid":
                return topo.grid(d["rows"], d["cols"], **common)
            case _:
                return topo.random_strongly_connected(
                    n, degree=d.get("degree") or 2.0, seed=d.get("seed") or 0, **common
                )


class ImportForm(forms.Form):
    file = forms.FileField(required=False, help_text="a topology JSON file, as `manage.py topology export` writes")
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 12, "cols": 80}), label="or paste it")
    replace = forms.BooleanField(
        required=False, help_text="replace the topology of the same name (its runs stay: they keep their own copy)"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("file")
        # A file is read no further than the limit Django sets on request bodies.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = upload.read(limit + 1) if upload else (data.get("text") or "").encode()
        if len(raw) > limit:
            raise ValidationError(f"this file is larger than {limit} bytes")
        if not raw.strip():
            raise ValidationError("choose a file or paste the JSON")
        try:
            # Nesting, number lengths and encoding checked: a depth bomb was a 500.
            data["topology"] = safejson.loads(raw)
        except safejson.JSONInputError as exc:
            raise ValidationError(f"this is not valid JSON: {exc}") from None
        return data


# --- the admins ---------------------------------------------------------------------------


@admin.register(Topology)
class TopologyAdmin(admin.ModelAdmin):
    form = TopologyForm
    inlines = [ProcessInline, ChannelInline]
    list_display = ["name", "workload", "process_count", "channel_count", "created_at"]
    list_filter = ["workload"]
    search_fields = ["name", "description"]
    change_form_template = "admin/snapshots/topology/change_form.html"
    change_list_template = "admin/snapshots/topology/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Topology]:
        return super().get_queryset(request).with_counts()  # type: ignore[attr-defined]

    @admin.display(ordering="process_count", description="processes")
    def process_count(self, obj: Topology) -> int:
        return obj.process_count  # type: ignore[attr-defined]

    @admin.display(ordering="channel_count", description="channels")
    def channel_count(self, obj: Topology) -> int:
        return obj.channel_count  # type: ignore[attr-defined]

    def get_inlines(self, request: HttpRequest, obj: Topology | None) -> list[type]:
        return [] if is_large(obj) else list(self.inlines)

    def get_form(self, request: HttpRequest, obj: Topology | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        form.check_stored_graph = is_large(obj)
        return form

    def get_formset_kwargs(self, request: HttpRequest, obj: Any, inline: Any, prefix: str) -> dict[str, Any]:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        # The channel inline judges the whole topology, so it needs the process inline.
        if not hasattr(request, "_topology_formsets"):
            request._topology_formsets = {}  # type: ignore[attr-defined]
        kwargs["siblings"] = request._topology_formsets  # type: ignore[attr-defined]
        return kwargs

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not Process:
            return super().save_formset(request, form, formset, change)
        # New processes go after the existing ones, in the order they were entered.
        processes = formset.save(commit=False)
        for gone in formset.deleted_objects:
            gone.delete()
        last = max(form.instance.processes.values_list("position", flat=True), default=-1)
        for process in processes:
            if process.pk is None:
                last += 1
                process.position = last
            process.save()
        return None

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        obj = kwargs.get("obj")
        if obj is not None:
            context["topology_graph"] = obj.to_dict()
            context["inlines_hidden"] = is_large(obj)
            context["inline_limit"] = INLINE_LIMIT
            context["export_url"] = reverse("admin:snapshots_topology_export", args=[obj.pk])
        return super().render_change_form(request, context, *args, **kwargs)

    # -- extra pages ------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path("generate/", self.admin_site.admin_view(self.generate_view), name="snapshots_topology_generate"),
            path("import/", self.admin_site.admin_view(self.import_view), name="snapshots_topology_import"),
            path("<int:pk>/export/", self.admin_site.admin_view(self.export_view), name="snapshots_topology_export"),
        ]
        return extra + super().get_urls()

    def _page(self, request: HttpRequest, form: forms.Form, title: str, intro: str, submit: str) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "intro": intro,
            "submit_label": submit,
            "form": form,
        }
        return TemplateResponse(request, "admin/snapshots/topology/form_page.html", context)

    def _created(self, request: HttpRequest, topology: Topology, verb: str) -> HttpResponseRedirect:
        self.message_user(
            request,
            f"{verb} {topology.name}: {topology.processes.count()} processes, {topology.channels.count()} channels",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:snapshots_topology_change", args=[topology.pk]))

    def generate_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = GenerateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                topology = services.import_topology(form.topology())
            except (topo.TopologyError, services.ServiceError) as exc:
                form.add_error(None, _problems(exc))
            else:
                return self._created(request, topology, "generated")
        intro = f"Builds a strongly connected topology and saves it; up to {MAX_GENERATED_PROCESSES} processes."
        return self._page(request, form, "Generate a topology", intro, "Generate")

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data["topology"]
            name = data.get("name") if isinstance(data, dict) else None
            existing = Topology.objects.filter(name=name).first() if isinstance(name, str) else None
            try:
                if existing is not None and form.cleaned_data["replace"]:
                    if not self.has_change_permission(request, existing):
                        raise PermissionDenied
                    return self._created(request, services.replace_topology(existing, data), "replaced")
                return self._created(request, services.import_topology(data), "imported")
            except (topo.TopologyError, services.ServiceError) as exc:
                form.add_error(None, _problems(exc))
        intro = "The JSON that `manage.py topology export NAME` prints (and `manage.py topology import` reads)."
        return self._page(request, form, "Import a topology", intro, "Import")

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        topology = get_object_or_404(Topology, pk=pk)
        if not self.has_view_or_change_permission(request, topology):
            raise PermissionDenied
        # Byte for byte what `manage.py topology export NAME` prints.
        response = HttpResponse(json.dumps(topology.to_dict(), indent=2) + "\n", content_type="application/json")
        # Built by Django, quoted and encoded; a name stored before the rule loses its CR, LF, quotes.
        response["Content-Disposition"] = content_disposition_header(True, f"{topo.file_name(topology.name)}.json")
        return response


def _problems(exc: Exception) -> list[str]:
    return exc.problems if isinstance(exc, topo.TopologyError) else [str(exc)]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Runs and snapshots change only through the product (services), never here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2))


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["id", "topology", "workload", "status", "rate", "epoch", "created_at", "stopped_at", "created_by"]
    list_filter = ["status", "workload"]
    list_select_related = ["topology", "created_by"]
    fields = [
        "topology",
        "workload",
        "status",
        "rate",
        "seed",
        "params",
        "expected_total",
        "epoch",
        "faults_shown",
        "watchpoints_shown",
        "restores_shown",
        "created_at",
        "stopped_at",
        "created_by",
        "frozen_topology",
    ]
    readonly_fields = fields

    @admin.display(description="topology as it was when the run started")
    def frozen_topology(self, run: Run) -> str:
        return _pretty(run.spec)

    @admin.display(description="channel faults now")
    def faults_shown(self, run: Run) -> str:
        if not run.faults:
            return "none: every channel is reliable and FIFO"
        return _pretty(run.faults)

    @admin.display(description="watchpoints")
    def watchpoints_shown(self, run: Run) -> str:
        rows = format_html_join(
            "",
            '<li><a href="{}">{}</a></li>',
            (
                (reverse("admin:snapshots_watchpoint_change", args=[w.pk]), str(w))
                for w in run.watchpoints.order_by("id")
            ),
        )
        return format_html("<ul>{}</ul>", rows) if rows else "none"

    @admin.display(description="restores")
    def restores_shown(self, run: Run) -> str:
        rows = format_html_join(
            "",
            "<li>{}: from snapshot {} (epoch {}; {} replayed, {} dropped)</li>",
            (
                (r.at.strftime("%Y-%m-%d %H:%M:%S"), r.snapshot_id, r.epoch, r.replayed_messages, r.dropped_frames)
                for r in run.restores.order_by("id")
            ),
        )
        return format_html("<ul>{}</ul>", rows) if rows else "none"


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "run",
        "initiator",
        "algorithm",
        "status",
        "started_at",
        "duration",
        "consistent",
        "watchpoint",
    ]
    list_filter = ["status", "algorithm"]
    search_fields = ["initiator"]
    fields = [
        "run",
        "initiator",
        "algorithm",
        "epoch",
        "watchpoint",
        "trigger",
        "status",
        "reason",
        "started_at",
        "finished_at",
        "reported",
        "verdict_shown",
        "properties_shown",
        "process_records",
        "channel_records",
        "export",
    ]
    readonly_fields = fields

    @admin.display(boolean=True)
    def consistent(self, snapshot: Snapshot) -> bool | None:
        if not snapshot.verdict:
            return None
        return snapshot.is_sound

    def reported(self, snapshot: Snapshot) -> str:
        return (
            f"{snapshot.processes_reported} of {snapshot.processes_total} processes, "
            f"{snapshot.channels_reported} of {snapshot.channels_total} channels"
        )

    @admin.display(description="verdict")
    def verdict_shown(self, snapshot: Snapshot) -> str:
        return _pretty(snapshot.verdict)

    @admin.display(description="stable properties")
    def properties_shown(self, snapshot: Snapshot) -> str:
        if not snapshot.properties:
            return "none yet (they are judged when the snapshot completes)"
        holds = {True: "holds", False: "does not hold", None: "n/a"}
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (name, holds.get(found.get("holds"), "?"), found.get("detail", ""))
                for name, found in snapshot.properties.items()
                if isinstance(found, dict)
            ),
        )
        return format_html("<table><tr><th>property</th><th></th><th>why</th></tr>{}</table>", rows)

    def process_records(self, snapshot: Snapshot) -> str:
        records = snapshot.process_records.order_by("id")[:SHOWN_RECORDS]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r.process, json.dumps(r.state), json.dumps(r.sent), json.dumps(r.received)) for r in records),
        )
        return format_html(
            "<table><tr><th>process</th><th>state</th><th>sent</th><th>received</th></tr>{}</table>{}",
            rows,
            self._more(snapshot.processes_reported),
        )

    def channel_records(self, snapshot: Snapshot) -> str:
        records = snapshot.channel_records.order_by("id")[:SHOWN_RECORDS]
        rows = format_html_join(
            "",
            "<tr><td>{}→{}</td><td>{}</td></tr>",
            ((r.src, r.dst, json.dumps(r.messages)) for r in records),
        )
        return format_html(
            "<table><tr><th>channel</th><th>recorded messages</th></tr>{}</table>{}",
            rows,
            self._more(snapshot.channels_reported),
        )

    def _more(self, count: int) -> str:
        return f"(the first {SHOWN_RECORDS} of {count}: the export has them all)" if count > SHOWN_RECORDS else ""

    def export(self, snapshot: Snapshot) -> str:
        url = reverse("api:snapshot-detail", args=[snapshot.pk])
        links = ((f"{url}?format={fmt}", fmt.upper()) for fmt in ("json", "csv", "ndjson"))
        return format_html_join(" · ", '<a href="{}">{}</a>', links)


@admin.register(Restore)
class RestoreAdmin(ReadOnlyAdmin):
    """Restores happen through the product (API, CLI, dashboard); here they are only read."""

    list_display = ["id", "run", "snapshot", "epoch", "at", "replayed_messages", "dropped_frames", "requested_by"]
    list_select_related = ["requested_by"]
    fields = list_display[1:]
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A restore is part of its run's history: whoever reads runs reads restores.
        return request.user.has_perm("snapshots.view_run")


# --- watchpoints --------------------------------------------------------------------------


class WatchpointAddForm(forms.ModelForm):
    """A new watchpoint, made by ``watch.add_watchpoint`` when the form is judged.

    The service is the one judge of a watchpoint (the condition parsed and pointed at
    its mistake, the process, the cool-down, the run's limit) and it tells the workers;
    so the form asks it to make the watchpoint, and shows its refusal as the form's error.
    """

    class Meta:
        model = Watchpoint
        fields = ["run", "process", "condition", "mode", "cooldown_s", "algorithm"]

    user: Any = None
    created: Watchpoint | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            self.created = watch.add_watchpoint(
                data["run"],
                data["condition"],
                process=data.get("process") or None,
                mode=data["mode"],
                cooldown_s=data["cooldown_s"],
                algorithm=data["algorithm"],
                user=self.user,
            )
        except services.ServiceError as exc:
            raise ValidationError(str(exc)) from None
        return data


class WatchpointChangeForm(forms.ModelForm):
    """What may change of a watchpoint: when it fires and how it snapshots. Its condition
    is what it is: to watch something else, add a new one (its hits stay with the old)."""

    cooldown_s = forms.FloatField(
        label="cooldown (s)",
        min_value=0.1,
        max_value=watch.MAX_COOLDOWN,
        help_text="With mode every: seconds between two triggered snapshots.",
    )

    class Meta:
        model = Watchpoint
        fields = ["mode", "cooldown_s", "algorithm", "enabled"]


@admin.register(Watchpoint)
class WatchpointAdmin(admin.ModelAdmin):
    """Watchpoints steer a run, so operators (the control permission) manage them."""

    list_display = ["id", "run", "process_shown", "condition", "kind", "mode", "algorithm", "enabled", "hits"]
    list_filter = ["enabled", "kind", "mode", "algorithm"]
    list_select_related = ["run"]
    search_fields = ["condition", "process"]
    shown = ["kind", "hits", "last_hit_at", "triggered", "created_at", "created_by"]

    @admin.display(description="process")
    def process_shown(self, w: Watchpoint) -> str:
        return w.process or "every process"

    @admin.display(description="snapshots it triggered")
    def triggered(self, w: Watchpoint) -> str:
        links = (
            (reverse("admin:snapshots_snapshot_change", args=[s.pk]), f"{s.pk} ({s.status})")
            for s in w.snapshots.order_by("id")
        )
        return format_html_join(", ", '<a href="{}">{}</a>', links) or "none yet"

    def get_form(self, request: HttpRequest, obj: Watchpoint | None = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = WatchpointChangeForm if obj is not None else WatchpointAddForm
        form = super().get_form(request, obj, change, **kwargs)
        form.user = request.user
        return form

    def get_fields(self, request: HttpRequest, obj: Watchpoint | None = None) -> list[str]:
        if obj is None:
            return list(WatchpointAddForm.Meta.fields)
        return ["run", "process", "condition", *WatchpointChangeForm.Meta.fields, *self.shown]

    def get_readonly_fields(self, request: HttpRequest, obj: Watchpoint | None = None) -> list[str]:
        return ["run", "process", "condition", *self.shown] if obj is not None else []

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "run":
            # Nothing is left to watch on a stopped run.
            kwargs["queryset"] = Run.objects.exclude(status=Run.Status.STOPPED).select_related("topology")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Watchpoint:
        if not change:
            return form.created  # made (and told to the workers) while the form was judged
        return form.save(commit=False)

    def save_model(self, request: HttpRequest, obj: Watchpoint, form: Any, change: bool) -> None:
        if change:
            obj.save()
            watch.publish_watchpoints(obj.run)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:  # a new one has nothing related, and was saved by the service
            super().save_related(request, form, formsets, change)

    def delete_model(self, request: HttpRequest, obj: Watchpoint) -> None:
        watch.remove_watchpoint(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Watchpoint]) -> None:
        for watchpoint in queryset.select_related("run"):
            watch.remove_watchpoint(watchpoint)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("snapshots.view_run")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("snapshots.control_run")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("snapshots.control_run")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("snapshots.control_run")
