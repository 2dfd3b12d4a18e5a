"""The instances' own metrics, made fit for the gateway's `GET /metrics`.

Each instance's page is parsed with prometheus_client's text parser and re-exposed with the
labels `node_id` and `instance_id`. One page must not spoil the others: Prometheus rejects a
whole scrape over one duplicate TYPE line (issue 15, item 8). So a family whose names another
family already holds (the gateway's own, or one of another type from another instance) is
left out, and said once as a node event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

# The sample names a family of each type writes, as suffixes of its name.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
HOMES = ("", "_total", "_bucket", "_sum", "_count", "_created", "_info", "_gsum", "_gcount")
GATEWAY = "the gateway's own"


@dataclass(frozen=True)
class Clash:
    """A family of one instance that the gateway leaves out, and why."""

    node: str
    instance: str
    family: str
    kind: str
    reason: str

    def message(self) -> str:
        if not self.family:
            return f"metrics of instance {self.instance} left out: {self.reason}"
        return (f"metrics: {self.family} ({self.kind}) of instance {self.instance} left out of "
                f"the gateway's /metrics: {self.reason}")


def names(family: Metric) -> set[str]:
    """The names a family takes in an exposition: its own, its samples' and its TYPE line's."""
    return {family.name, *(family.name + suffix for suffix in SUFFIXES[family.type]),
            *(sample.name for sample in family.samples)}


def merge(scraped: Iterable[tuple[str, str, str]], reserved: Iterable[Metric]
          ) -> tuple[list[Metric], list[Clash]]:
    """(node, instance, page) merged into families by name and type, each sample labelled
    with its node and instance; the families left out because their names are taken."""
    owners = {name: (GATEWAY, family.name, "") for family in reserved for name in names(family)}
    merged: dict[tuple[str, str], Metric] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    clashes: list[Clash] = []
    for node, instance, text in scraped:
        try:
            families = normalised(text)
        except ValueError as exc:
            clashes.append(Clash(node, instance, "", "", "the page is not in the Prometheus "
                                 f"text format ({exc})"))
            continue
        for family in families:
            key = (family.name, family.type)
            target = merged.get(key)
            if target is None:
                taken = sorted(name for name in names(family) if name in owners)
                if taken:
                    owner, name, where = owners[taken[0]]
                    reason = (f"{GATEWAY} family {name} has that name" if owner == GATEWAY else
                              f"the name is taken by {name} ({owner}) of {where}")
                    clashes.append(Clash(node, instance, family.name, family.type, reason))
                    continue
                target = merged[key] = Metric(family.name, family.documentation or
                                              f"{family.name}, from the instances",
                                              family.type)
                owners.update((name, (family.type, family.name, f"instance {instance}"))
                              for name in names(family))
            for sample in family.samples:
                labels = {**sample.labels, "node_id": node, "instance_id": instance}
                series = (sample.name, tuple(sorted(labels.items())))
                if series not in seen:  # Prometheus refuses a series twice in one scrape
                    seen.add(series)
                    target.add_sample(sample.name, labels, sample.value)
    return list(merged.values()), clashes


def normalised(text: str) -> list[Metric]:
    """One page's families, as their TYPE lines meant them, without `_created` series.

    The text parser takes `# TYPE app_hits counter` then `app_hits_total 7` for two families:
    a counter with no samples, and an untyped `app_hits_total`. Such a sample goes back to
    the family whose TYPE line names it."""
    families = list(text_string_to_metric_families(text))
    typed = {family.name: family for family in families if family.type != "unknown"}
    kept = []
    for family in families:
        samples = [s for s in family.samples if s.name != family.name + "_created"]
        home = _home(family.name, typed) if family.type == "unknown" else None
        if home is None:
            family.samples = samples
            kept.append(family)
        elif family.name == home.name + "_created":
            continue
        elif home.type == "counter":
            home.samples += [sample._replace(name=home.name + "_total") for sample in samples]
        else:
            home.samples += samples
    return [family for family in kept if family.samples]


def _home(name: str, typed: dict[str, Metric]) -> Metric | None:
    """The typed family that a sample called `name` belongs to, if any."""
    for suffix in HOMES:
        family = typed.get(name.removesuffix(suffix)) if name.endswith(suffix) else None
        if family is not None and (suffix in SUFFIXES[family.type] or family.type == "counter"
                                   and not suffix):
            return family
    return None
