"""docs/implementations.md is generated from the registry: the committed page is what the registry gives, every row is on it."""
from comparisons.core import registry
from comparisons.report import implementations_page as page


def test_the_committed_page_is_the_generated_one():
    """Rerun `make report` (python -m comparisons.report results) after changing a row of the registry."""
    assert page.PAGE.read_text() == page.render()


def test_every_row_and_every_capability_is_on_the_page(monkeypatch):
    """A row registered now appears, with its words and its capabilities (the page is not a copy of today's rows)."""
    monkeypatch.setitem(registry.REGISTRY, "numpy:test_only", registry.Implementation(
        "numpy:test_only", "a test-only row", "numpy", "unused:builder", title="Test only", minibatch=True,
        distributed="workers", details="It shows | that a pipe is escaped."))
    text = page.render()
    for impl in registry.REGISTRY.values():
        assert f"| `{impl.name}`" in text, impl.name
    assert "| `numpy:test_only` (Test only) | numpy | It shows \\| that a pipe is escaped. |" in text
    capability_row = next(line for line in text.splitlines() if line.startswith("| `numpy:test_only` |"))
    assert "over --workers processes" in capability_row and capability_row.count("| yes ") >= 1
    assert "`numpy:test_only`" in text.split("Mini-batch and stochastic runs")[1].split("\n")[0]


def test_a_new_field_of_the_registry_must_be_placed_on_the_page():
    """Every Implementation field is either the row's words or a capability column."""
    assert page.undescribed_fields() == []


def test_the_page_is_rewritten_only_for_the_repositorys_results(tmp_path):
    """`make run` / `make report` on results/ rewrite it; any other folder (a test's, a user's) leaves it alone."""
    fake = tmp_path / "docs" / "implementations.md"
    fake.parent.mkdir()
    fake.write_text("stale\n")
    assert page.sync(tmp_path / "elsewhere", path=fake) is None and fake.read_text() == "stale\n"
    assert page.sync(tmp_path / "results", path=fake) == fake and fake.read_text() == page.render()
    assert page.sync(tmp_path / "results", path=fake) is None  # unchanged: not written again
