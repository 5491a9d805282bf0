"""A griffe extension for the API pages (docs tooling only; labs_env never imports it).

Griffe reads labs_env statically, which keeps the source-level details (annotations and
defaults as written, attribute docstrings) but cannot see functions made at import time: the
client endpoint methods (``catalog = _endpoint(rq.catalog_spec)``) and the derived twins
(``evaluate_policy = blocking(aevaluate_policy, ...)``, ``collect_sync = _gathered(collect)``).
This extension replaces each such attribute with the function griffe gets by inspecting the
imported object, so it renders with its real signature and docstring.

It also adapts the code base's docstring habits to griffe's Google-style parser:

- ``Example:`` section titles (griffe knows only ``Examples:``);
- parameters documented together (``policy_a, policy_b: ...`` or ``a / b: ...``) become one
  entry each;
- Sphinx roles (``:class:`~labs_env.LabsEnv```) become optional cross-references: a link when
  the target is on a page, plain code otherwise (a name re-exported by ``labs_env`` points at
  its defining module);
- ``#:`` comments above an attribute become its docstring (griffe reads only string literals).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([\w.]+)(?:\(\))?`")
_JOINT = re.compile(r"^(\s+)(\w+(?:\s*[,/]\s*\w+)+):(.*)$")
_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes):\s*$")


def _cross_reference(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    text = target.rpartition(".")[2] if short else target
    return f'<autoref identifier="{_defining_path(target)}" optional><code>{text}</code></autoref>'


def _defining_path(target: str) -> str:
    """``labs_env.LabsEnv`` (a root re-export, not on any page) -> its defining module's path."""
    package, _, name = target.partition(".")
    if package != "labs_env" or "." in name:
        return target
    try:
        module = getattr(importlib.import_module("labs_env"), name).__module__
    except (ImportError, AttributeError):
        return target
    return f"{module}.{name}" if isinstance(module, str) else target


def _split_joint_entries(text: str) -> str:
    """``a, b: description`` in an Args/Attributes section -> one entry per name."""
    lines = text.split("\n")
    out: list[str] = []
    section_indent: int | None = None
    for index, line in enumerate(lines):
        heading = _SECTION.match(line)
        if heading:
            section_indent = len(heading.group(1))
            out.append(line)
            continue
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if section_indent is not None and stripped and indent <= section_indent:
            section_indent = None
        joint = _JOINT.match(line) if section_indent is not None else None
        if joint is None or len(joint.group(1)) != section_indent + 4:
            out.append(line)
            continue
        entry_indent = joint.group(1)
        continuation: list[str] = []
        for follow in lines[index + 1 :]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= len(entry_indent):
                break
            continuation.append(follow)
        names = [name.strip() for name in re.split(r"[,/]", joint.group(2))]
        for name in names[:-1]:
            out.append(f"{entry_indent}{name}:{joint.group(3)}")
            out.extend(continuation)
        out.append(f"{entry_indent}{names[-1]}:{joint.group(3)}")
    return "\n".join(out)


def _adapt(docstring: griffe.Docstring | None) -> None:
    if docstring is None:
        return
    value = _EXAMPLE.sub(r"\1Examples:", docstring.value)
    value = _split_joint_entries(value)
    docstring.value = _ROLE.sub(_cross_reference, value)


def _comment_docstring(attribute: griffe.Object, loader: griffe.GriffeLoader) -> None:
    """The ``#:`` comment lines right above an attribute become its docstring."""
    try:
        lines = loader.lines_collection[attribute.filepath]  # type: ignore[index]
    except (KeyError, AttributeError):
        return
    comment: list[str] = []
    index = (attribute.lineno or 0) - 2
    while index >= 0 and lines[index].strip().startswith("#:"):
        comment.insert(0, lines[index].strip()[2:].strip())
        index -= 1
    if comment:
        attribute.docstring = griffe.Docstring(
            "\n".join(comment),
            lineno=index + 2,
            parent=attribute,
            parser=loader.docstring_parser,
            parser_options=loader.docstring_options,
        )


def _runtime(path: str) -> Any:
    module_path, _, rest = path.partition(":")
    obj: Any = importlib.import_module(module_path)
    for part in rest.split(".") if rest else ():
        obj = getattr(obj, part)
    return obj


class GeneratedFunctions(griffe.Extension):
    """Render functions made at import time with their runtime signature and docstring.

    Args:
        same_parameters: ``{function path: path of the function whose parameters it takes}``,
            for generated functions whose runtime signature is ``(*args, **kwargs)`` (their
            docstring says "same arguments as ..."); the return annotation stays their own.
    """

    def __init__(self, same_parameters: dict[str, str] | None = None) -> None:
        super().__init__()
        self.same_parameters = dict(same_parameters or {})

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._replace_generated(pkg, loader)
        for obj in _walk(pkg):
            if obj.is_attribute and obj.docstring is None:
                _comment_docstring(obj, loader)
            _adapt(obj.docstring)

    def _replace_generated(self, module: griffe.Module, loader: griffe.GriffeLoader) -> None:
        for module_obj in [module, *_nested(module, lambda m: m.is_module)]:
            inspected: griffe.Module | None = None
            for owner in [module_obj, *_nested(module_obj, lambda m: m.is_class)]:
                for name, member in list(owner.members.items()):
                    if member.is_alias or not member.is_attribute:
                        continue
                    runtime_path = f"{module_obj.path}:{owner.path[len(module_obj.path) + 1 :]}"
                    try:
                        parent = _runtime(runtime_path.rstrip(":"))
                        value = inspect.getattr_static(parent, name)
                    except (ImportError, AttributeError):
                        continue
                    if not inspect.isfunction(value) or not value.__module__.startswith("labs_env"):
                        continue
                    if inspected is None:
                        inspected = griffe.inspect(
                            module_obj.path,
                            docstring_parser=loader.docstring_parser,
                            docstring_options=loader.docstring_options,
                        )
                    relative = owner.path[len(module_obj.path) + 1 :]
                    source = inspected[f"{relative}.{name}" if relative else name]
                    if source.is_alias:
                        continue
                    function = griffe.Function(
                        name,
                        lineno=member.lineno,
                        endlineno=member.endlineno,
                        parameters=source.parameters,
                        returns=source.returns,
                        decorators=source.decorators,
                        docstring=source.docstring,
                    )
                    function.labels = set(source.labels) - {"async"}
                    if inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value):
                        function.labels.add("async")
                    owner.set_member(name, function)
        for path, origin in self.same_parameters.items():
            if path.split(".", 1)[0] != module.path:
                continue
            try:
                target = module[path.split(".", 1)[1]]
                template = module[origin.split(".", 1)[1]]
            except KeyError as exc:  # renamed or moved: fix mkdocs.yml
                raise ValueError(f"same_parameters in mkdocs.yml: {exc} not found") from None
            target.parameters = griffe.Parameters(*template.parameters)


def _nested(obj: griffe.Object, keep: Callable[[griffe.Object], bool]) -> list[Any]:
    """The members of ``obj`` that ``keep`` accepts, and theirs, depth first (no aliases)."""
    found: list[Any] = []
    for member in obj.members.values():
        if not member.is_alias and keep(member):
            found.append(member)
            found.extend(_nested(member, keep))
    return found


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    return [obj, *_nested(obj, lambda member: True)]
