"""Two contract types for import-linter that its built-in ones cannot say (see pyproject.toml,
``[tool.importlinter]``; run with ``make imports``).

* ``own_modules``: in every package right under ``root`` (a domain), the modules named in
  ``modules`` (its repository, its router) are imported only from inside that package, and
  by ``allowed_importers``. One rule for every domain, present and future, instead of one
  ``protected`` contract per domain.
* ``single_joiner``: no module imports from (or belongs to) every one of ``packages``, save
  ``allowed_importers``: one module joins those packages, and only that one.

Both look at direct imports only, as ``protected`` contracts do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grimp
from importlinter import Contract, ContractCheck, fields, output
from importlinter.domain.helpers import module_expressions_to_modules


@dataclass(frozen=True)
class Illegal:
    importer: str
    imported: str
    lines: tuple[int, ...]


def _lines(graph: grimp.ImportGraph, importer: str, imported: str) -> tuple[int, ...]:
    details = graph.get_import_details(importer=importer, imported=imported)
    return tuple(sorted({int(d["line_number"]) for d in details}))


def _allowed(graph: grimp.ImportGraph, expressions: Any) -> set[str]:
    if not expressions:
        return set()
    return {
        module.name
        for module in module_expressions_to_modules(graph, expressions, as_packages=True)
    }


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


class OwnModulesContract(Contract):
    """A domain's ``modules`` (e.g. repository, router) are imported only by the domain."""

    type_name = "own_modules"

    root = fields.StringField()
    modules = fields.ListField(subfield=fields.StringField())
    allowed_importers = fields.ListField(subfield=fields.ModuleExpressionField(), required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        root: str = self.root  # type: ignore[assignment]
        names: list[str] = self.modules  # type: ignore[assignment]
        allowed = _allowed(graph, self.allowed_importers)
        illegal: list[Illegal] = []
        for domain in sorted(graph.find_children(root)):
            for name in names:
                private = f"{domain}.{name}"
                if private not in graph.modules:
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(private)):
                    if _inside(importer, domain) or importer in allowed:
                        continue
                    illegal.append(Illegal(importer, private, _lines(graph, importer, private)))
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for found in check.metadata["illegal"]:
            lines = ", ".join(map(str, found.lines))
            output.print_error(f"{found.importer} -> {found.imported} (l.{lines})", bold=False)
            output.new_line()


class SingleJoinerContract(Contract):
    """Only ``allowed_importers`` import from (or belong to) every one of ``packages``."""

    type_name = "single_joiner"

    packages = fields.ListField(subfield=fields.StringField())
    allowed_importers = fields.ListField(subfield=fields.ModuleExpressionField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        packages: list[str] = self.packages  # type: ignore[assignment]
        allowed = _allowed(graph, self.allowed_importers)
        joiners: list[tuple[str, list[Illegal]]] = []
        for module in sorted(graph.modules):
            if module in allowed:
                continue
            imported = graph.find_modules_directly_imported_by(module)
            reached: list[Illegal] = []
            for package in packages:
                if _inside(module, package):
                    reached.append(Illegal(module, package, ()))
                    continue
                into = sorted(m for m in imported if _inside(m, package))
                if not into:
                    break
                reached.extend(Illegal(module, m, _lines(graph, module, m)) for m in into)
            else:
                joiners.append((module, reached))
        return ContractCheck(kept=not joiners, metadata={"joiners": joiners})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for module, reached in check.metadata["joiners"]:
            output.print_error(f"{module} joins them:", bold=False)
            output.new_line()
            for found in reached:
                if found.lines:
                    lines = ", ".join(map(str, found.lines))
                    output.print_error(f"  imports {found.imported} (l.{lines})", bold=False)
                else:
                    output.print_error(f"  belongs to {found.imported}", bold=False)
                output.new_line()
