"""Load Istio networking YAML into the typed model, validating as istiod's webhook does.

Everything is all-or-nothing: every problem in every input is collected, and if there
is any, :class:`~meshchaos.errors.ConfigInvalid` is raised and nothing is returned.
Each problem reads ``<source>: <Kind> <namespace>/<name>: <field path>: <message>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from meshchaos.errors import ConfigInvalid
from meshchaos.istio._fields import Problems, Reader, _kind
from meshchaos.istio.destinationrule import parse_destination_rule
from meshchaos.istio.gateway import parse_gateway
from meshchaos.istio.model import Metadata, Resource
from meshchaos.istio.virtualservice import parse_virtual_service

__all__ = [
    "API_GROUP",
    "API_VERSIONS",
    "KINDS",
    "load_file",
    "load_files",
    "load_text",
    "parse_documents",
    "parse_resource",
]

API_GROUP = "networking.istio.io"
API_VERSIONS = ("v1", "v1beta1", "v1alpha3")

_Parser = Callable[[dict[str, Any], Metadata, Reader, str, dict[str, Any]], Resource | None]
_PARSERS: dict[str, _Parser] = {
    "VirtualService": parse_virtual_service,
    "DestinationRule": parse_destination_rule,
    "Gateway": parse_gateway,
}
KINDS = tuple(_PARSERS)

# The C loader is several times faster; apply is on the hot path of tests.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_text(text: str, source: str = "<string>") -> list[Resource]:
    """Parse multi-document YAML text into resources, or raise ``ConfigInvalid``."""
    problems: list[str] = []
    resources = _load_text(text, source, problems)
    if problems:
        raise ConfigInvalid(problems)
    return resources


def load_file(path: Path) -> list[Resource]:
    """Parse one YAML file, or raise ``ConfigInvalid``."""
    return load_files([path])


def load_files(paths: Sequence[Path]) -> list[Resource]:
    """Parse several YAML files, all or nothing: one bad file means nothing is returned."""
    problems: list[str] = []
    resources: list[Resource] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            problems.append(f"{path}: cannot read: {reason}")
            continue
        resources.extend(_load_text(text, str(path), problems))
    if problems:
        raise ConfigInvalid(problems)
    return resources


def parse_documents(docs: Iterable[Any], source: str) -> list[Resource]:
    """Parse already-loaded YAML documents (``None`` entries are skipped), all or nothing."""
    problems: list[str] = []
    resources: list[Resource] = []
    for index, doc in enumerate(docs, start=1):
        if doc is not None:
            _parse_document(doc, source, f"document {index}", problems, resources)
    if problems:
        raise ConfigInvalid(problems)
    return resources


def parse_resource(doc: dict[str, Any], source: str) -> Resource:
    """Parse one resource document (not a List), or raise ``ConfigInvalid``."""
    problems: list[str] = []
    resources: list[Resource] = []
    _parse_document(doc, source, "document 1", problems, resources, allow_list=False)
    if problems:
        raise ConfigInvalid(problems)
    return resources[0]


def _load_text(text: str, source: str, problems: list[str]) -> list[Resource]:
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        problems.append(f"{source}: invalid YAML: {' '.join(str(exc).split())}")
        return []
    resources: list[Resource] = []
    for index, doc in enumerate(docs, start=1):
        if doc is not None:
            _parse_document(doc, source, f"document {index}", problems, resources)
    return resources


def _parse_document(
    doc: Any,
    source: str,
    where: str,
    problems: list[str],
    out: list[Resource],
    *,
    allow_list: bool = True,
    default_kind: str | None = None,
    default_api: str | None = None,
) -> None:
    if not isinstance(doc, dict):
        problems.append(f"{source}: {where}: must be a mapping, not {_kind(doc)}")
        return
    kind = doc.get("kind", default_kind)
    api = doc.get("apiVersion", default_api)
    if isinstance(kind, str) and kind.endswith("List") and allow_list:
        _parse_list(doc, kind, api, source, where, problems, out)
        return

    meta_raw = doc.get("metadata")
    name = meta_raw.get("name") if isinstance(meta_raw, dict) else None
    namespace = meta_raw.get("namespace") if isinstance(meta_raw, dict) else None
    kind_text = kind if isinstance(kind, str) and kind else "<no kind>"
    if isinstance(name, str) and name:
        ns = namespace if isinstance(namespace, str) and namespace else "default"
        label = f"{kind_text} {ns}/{name}"
    else:
        label = f"{kind_text} ({where})"
    reader = Reader(Problems(f"{source}: {label}", problems))

    if not isinstance(kind, str) or not kind:
        reader.add("kind", "required")
        return
    parser = _PARSERS.get(kind)
    if not _check_api_version(api, reader) or parser is None:
        if parser is None:
            reader.add("kind", f"unsupported kind {kind} (supported: {', '.join(KINDS)})")
        return
    metadata = _parse_metadata(meta_raw, reader)
    spec = doc.get("spec")
    if spec is None:
        spec = {}
    elif not isinstance(spec, dict):
        reader.add("spec", f"must be a mapping, not {_kind(spec)}")
        return
    if metadata is None:
        return
    resource = parser(spec, metadata, reader, source, doc)
    if resource is not None and reader.problems.count == 0:
        out.append(resource)


def _parse_list(
    doc: dict[str, Any],
    kind: str,
    api: Any,
    source: str,
    where: str,
    problems: list[str],
    out: list[Resource],
) -> None:
    items = doc.get("items")
    if items is None:
        return
    if not isinstance(items, list):
        problems.append(f"{source}: {kind} ({where}): items: must be a list, not {_kind(items)}")
        return
    # "VirtualServiceList" items may omit kind and apiVersion; a plain "List" names neither.
    item_kind = kind[: -len("List")] if kind != "List" else None
    item_api = api if item_kind else None
    for i, item in enumerate(items):
        _parse_document(
            item,
            source,
            f"{where}, items[{i}]",
            problems,
            out,
            allow_list=False,
            default_kind=item_kind,
            default_api=item_api,
        )


def _check_api_version(api: Any, reader: Reader) -> bool:
    if api is None:
        reader.add("apiVersion", "required")
        return False
    if not isinstance(api, str):
        reader.add("apiVersion", f"must be a string, not {_kind(api)}")
        return False
    group, _, version = api.partition("/")
    if group != API_GROUP or version not in API_VERSIONS:
        expected = ", ".join(f"{API_GROUP}/{v}" for v in API_VERSIONS)
        reader.add("apiVersion", f"unsupported apiVersion {api} (expected one of {expected})")
        return False
    return True


def _parse_metadata(value: Any, r: Reader) -> Metadata | None:
    raw = r.mapping(value, "metadata")
    if raw is None:
        if value is None:
            r.add("metadata", "required")
        return None
    name = r.string(raw.get("name"), "metadata.name")
    if raw.get("name") is None or name == "":
        r.add("metadata.name", "required")
    namespace = r.string(raw.get("namespace"), "metadata.namespace") or "default"
    labels = r.str_map(raw.get("labels"), "metadata.labels")
    annotations = r.str_map(raw.get("annotations"), "metadata.annotations")
    if not name:
        return None
    return Metadata(name=name, namespace=namespace, labels=labels, annotations=annotations)
