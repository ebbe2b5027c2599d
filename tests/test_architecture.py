"""The app order of docs/architecture.md, for what import-linter (pyproject.toml) cannot see: foreign keys named by
string, migration dependencies, `import_module` strings; and no import cycle among the platform's apps, inside an
app, or among the modules of the libraries (grimp, the graph import-linter builds)."""

import ast
import re
from pathlib import Path

import grimp
import pytest
from django.apps import apps
from django.db.migrations.loader import MigrationLoader

REPO = Path(__file__).resolve().parents[1]
#: Lowest first, as in ARCHITECTURE ("Layers and app order"); `auth`, `contenttypes`, ... are Django's, below all.
APP_ORDER = [
    "accounts", "challenges", "teams", "datasets", "submissions", "evaluation", "algorithms", "leaderboards",
    "notifications", "organizers",
]
#: Dependencies against the order that are still there, each with the reason it stays. The test fails when one
#: disappears (delete its line) as much as when a new one appears.
KNOWN_UPWARD = {
    # History, not a dependency of today's code: challenges' 0002_initial added Phase.dataset and
    # Phase.training_dataset (foreign keys up to datasets) before the link moved to datasets.PhaseDatasets; 0004
    # removes them. Migrations that ran somewhere are never edited (test_challenges_names_nothing_of_datasets).
    ("migration", "challenges.0002_initial", "datasets"),
}


def rank(app_label: str) -> int:
    return APP_ORDER.index(app_label) if app_label in APP_ORDER else -1  # Django's own apps sit below ours


def test_foreign_keys_and_migrations_point_down_the_app_order():
    found = set()
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if field.is_relation and field.concrete and field.related_model is not None:
                target = field.related_model._meta.app_label
                if rank(target) > rank(model._meta.app_label):
                    found.add(("foreign key", f"{model._meta.label}.{field.name}", target))
    loader = MigrationLoader(None, ignore_no_migrations=True, load=True)
    for (app_label, name), migration in loader.disk_migrations.items():
        for target, _ in migration.dependencies:
            if rank(target) > rank(app_label):
                found.add(("migration", f"{app_label}.{name}", target))
    assert found == KNOWN_UPWARD


def test_challenges_names_nothing_of_datasets():
    """challenges sits below datasets: no model field, no migration after the historical 0002_initial (see
    KNOWN_UPWARD), no `run_before` and no string in its code (a lazy foreign key "datasets.Dataset", a module
    name for import_module) points at datasets; the link a phase reads lives in datasets."""
    loader = MigrationLoader(None, ignore_no_migrations=True, load=True)
    state = loader.project_state(nodes=[key for key in loader.graph.leaf_nodes() if key[0] == "challenges"])
    upward_fields = [
        f"{model_key[1]}.{name}"
        for model_key, model in state.models.items()
        if model_key[0] == "challenges"
        for name, field in model.fields.items()
        if getattr(field, "related_model", None) and str(field.related_model).lower().startswith("datasets.")
    ]
    assert upward_fields == []
    for (app_label, name), migration in loader.disk_migrations.items():
        if app_label == "challenges" and name != "0002_initial":
            assert [dep for dep in migration.dependencies + migration.run_before if dep[0] == "datasets"] == [], name
    naming = []
    for path in (REPO / "platform" / "spinebench" / "challenges").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.fullmatch(r"datasets\.\w+|spinebench\.datasets(\.\w+)*", node.value):
                    naming.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert naming == []


def _strings_naming_modules(path: Path) -> list[tuple[int, str]]:
    """Arguments of import_module(...) / __import__(...) that are string literals, with their line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def test_import_module_strings_point_down_the_app_order():
    wrong = []
    for path in (REPO / "platform" / "spinebench").rglob("*.py"):
        parts = path.relative_to(REPO / "platform" / "spinebench").parts
        source_app = parts[0] if len(parts) > 1 else None
        for line, module in _strings_naming_modules(path):
            match = re.match(r"spinebench\.(\w+)", module)
            if source_app and match and rank(match.group(1)) > rank(source_app):
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert wrong == []


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), among `modules`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module) & modules:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return components


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("spinebench", "evaluators", "phantoms", "baselines", cache_dir=None)


#: Modules of an app that sit above the access policy (ARCHITECTURE's two layers): pages, API, tasks and what only
#: they use (`plots` and the case viewers draw the figures the views decide to show; `receivers` and `apps` connect
#: hooks at ready time; `celery_hooks` and `serve` run the workers). Everything else (models, services, signal
#: definitions, ...) is below it.
UPPER = ("views", "api", "tasks", "serializers", "admin", "urls", "forms", "apps", "templatetags", "management",
         "receivers", "plots", "api_urls", "context_processors", "baseline_views", "viewer_views", "baseline_tasks",
         "case_viewer", "ct_viewer", "labelling_viewer", "case_predictions", "celery_hooks", "serve",
         "choice_views", "history_views", "compare_views", "dashboard_views", "dashboard_api", "dashboard_urls",
         "monitor_views", "rescore_views", "urls_evaluation", "evaluation_api", "evaluation_image_views",
         "evaluation_image_api", "urls_images", "dataset_views", "dataset_api", "part_choice", "worker_api",
         "worker_api_urls")


def layer_of(module: str) -> str:
    """`spinebench.<app>:upper|lower`, `spinebench.access`, or the project module (`spinebench.api`, ...)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "access":
        return ".".join(parts[:2])
    if len(parts) == 2:
        return module  # project-level modules: settings, urls, api, cli, celery
    return f"spinebench.{parts[1]}:{'upper' if parts[2] in UPPER else 'lower'}"


def test_no_import_cycle_among_the_platform_layers(graph):
    """Each app's lower and upper layer and the access policy form no cycle: views may ask the policy, the policy
    reads models and services, and models and services reach higher apps only through signals and hooks."""
    modules = {m for m in graph.modules if m.startswith("spinebench.")}
    edges = {
        (module, imported)
        for module in modules
        for imported in graph.find_modules_directly_imported_by(module) & modules
    }
    layers = grimp.ImportGraph()
    for module in modules:
        layers.add_module(layer_of(module))
    for module, imported in edges:
        if layer_of(module) != layer_of(imported):
            layers.add_import(importer=layer_of(module), imported=layer_of(imported))
    assert _cycles(layers, set(layers.modules)) == []


@pytest.mark.parametrize("package", ["spinebench", "evaluators", "phantoms", "baselines"])
def test_no_import_cycle_among_modules(graph, package):
    assert _cycles(graph, {m for m in graph.modules if m == package or m.startswith(package + ".")}) == []
