"""The page at ``/`` in real headless Chromium (Debian's package, driven by Playwright; no browser download)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from api_support import EXAMPLE_FORMULAS, shared_server

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def server(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> str:
    return shared_server(pytestconfig, tmp_path_factory.mktemp("web-server"))


@pytest.fixture(scope="module")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server: str) -> Iterator:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    expected = "Failed to load resource: the server responded with a status of 4"  # shown as a message on the page
    page.on(
        "console", lambda msg: problems.append(msg.text) if msg.type == "error" and expected not in msg.text else None
    )
    outside: list[str] = []
    page.on("request", lambda req: outside.append(req.url) if not req.url.startswith((server, "data:")) else None)
    page.goto(server)
    yield page
    context.close()
    assert not outside, f"the page fetched something from outside the app: {outside}"
    assert not problems, problems


def _natural(text: str) -> list:
    """The page sorts text like a person: Li2 before Li10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", text) if t]


def _column(page, key: str) -> list[str]:
    return page.locator(f'#ranked tbody td[data-key="{key}"]').all_inner_texts()


def test_paste_rank_sort_and_download(page, tmp_path: Path) -> None:
    page.fill("#formulas", "\n".join(EXAMPLE_FORMULAS))
    page.select_option("#mobile_ion", "Li")
    page.click("#rank-button")
    page.wait_for_selector("#ranked tbody tr")
    assert page.locator("#progress").is_hidden()
    statuses = _column(page, "status")
    assert len(statuses) == len(EXAMPLE_FORMULAS)  # every row shown, bad ones with a reason
    assert statuses[0] == "ranked" and {"rejected", "invalid"} <= set(statuses)
    formulas, reasons = _column(page, "formula"), _column(page, "reason")
    assert "unknown element symbol 'Xx'" in reasons[formulas.index("Xx2O")]
    assert "contains no Li" in reasons[formulas.index("NaCl")]
    assert [int(r) for r in _column(page, "rank") if r] == list(range(1, statuses.count("ranked") + 1))
    assert page.locator("#pareto-svg circle").count() == statuses.count("ranked")
    assert "ranked" in page.inner_text("#summary")

    page.click('#ranked th[data-key="formula"] button')
    assert page.get_attribute('#ranked th[data-key="formula"]', "aria-sort") == "ascending"
    shown = _column(page, "formula")
    assert shown == sorted(shown, key=_natural)
    page.click('#ranked th[data-key="score"] button')
    page.click('#ranked th[data-key="score"] button')  # second click: descending
    assert page.get_attribute('#ranked th[data-key="score"]', "aria-sort") == "descending"
    scores = [float(s) for s in _column(page, "score") if s]
    assert scores == sorted(scores, reverse=True)

    with page.expect_download() as info:
        page.click("#download-button")
    path = tmp_path / "ranked.csv"
    info.value.save_as(path)
    table = pd.read_csv(path, keep_default_na=False)
    assert sorted(table["formula"]) == sorted(EXAMPLE_FORMULAS)
    assert {"status", "reason", "score", "pareto_rank", "e_hull_ev_per_atom", "log10_sigma_s_per_cm"} <= set(table)


def test_options_reach_the_server(page) -> None:
    page.fill("#formulas", "Li3PS4\nNa3PS4\nNaCl")
    page.select_option("#mobile_ion", "Na")
    page.click("#rank-button")
    page.wait_for_selector("#ranked tbody tr")
    reasons = dict(zip(_column(page, "formula"), _column(page, "reason"), strict=True))
    assert "contains no Na" in reasons["Li3PS4"]
    assert "contains no Na" not in reasons["Na3PS4"]
    # no Na conductivity model: the page says so once, and shows no Li-trained conductivity
    notice = page.locator("#notices")
    assert notice.is_visible() and "no conductivity model for Na" in notice.inner_text()
    sigma = dict(zip(_column(page, "formula"), _column(page, "log10_sigma_s_per_cm"), strict=True))
    assert sigma["Na3PS4"] == "" and sigma["NaCl"] == ""
    assert page.locator("#pareto").is_hidden()  # nothing to plot against a conductivity that is not modelled


def test_known_compositions_are_marked_with_their_sources(page) -> None:
    page.fill("#formulas", "Li6PS5Cl\nLi5.5PS4.5Cl1.5Zz")
    page.click("#rank-button")
    page.wait_for_selector("#ranked tbody tr")
    assert page.locator("#notices").is_hidden()
    known = dict(zip(_column(page, "formula"), _column(page, "known_log10_sigma_s_per_cm"), strict=True))
    assert re.fullmatch(r"measured -2\.\d\d · MP", known["Li6PS5Cl"]), known
    assert known["Li5.5PS4.5Cl1.5Zz"] == ""
    cell = page.locator(
        '#ranked tbody tr:has(td[data-key="formula"]:text-is("Li6PS5Cl")) td[data-key="known_log10_sigma_s_per_cm"]'
    )
    title = cell.get_attribute("title")
    assert "OBELiX" in title and "doi:10." in title and "E_hull" in title and "mp-" in title


def test_upload_csv_and_bad_file_message(page, tmp_path: Path) -> None:
    good = tmp_path / "candidates.csv"
    pd.DataFrame({"formula": ["Li3PS4", "Li6PS5Cl"], "batch": ["a", "b"]}).to_csv(good, index=False)
    page.set_input_files("#file", str(good))
    page.click("#rank-button")
    page.wait_for_selector("#ranked tbody tr")
    assert sorted(_column(page, "formula")) == ["Li3PS4", "Li6PS5Cl"]
    assert page.locator("#error").is_hidden()

    bad = tmp_path / "spectrum.csv"
    bad.write_bytes(b"\x00\x01\x02 not a table")
    page.set_input_files("#file", str(bad))
    page.click("#rank-button")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "spectrum.csv" in error.inner_text() and "binary" in error.inner_text()
    assert "Traceback" not in error.inner_text()


def test_empty_submission_says_what_to_do(page) -> None:
    page.click("#rank-button")
    assert "Paste at least one formula" in page.inner_text("#error")


def test_page_stays_usable_while_a_long_list_is_ranked(page) -> None:
    # 20,000 distinct compositions take seconds to rank, so the progress indication is surely seen
    formulas = [
        f"Li{a}P{b}S{c}Cl{d}" for a in range(1, 21) for b in range(1, 11) for c in range(1, 11) for d in range(10)
    ]
    # as a paste would (Playwright's fill() types into the box and takes ~10 s for 2,000 lines)
    page.eval_on_selector("#formulas", "(box, text) => { box.value = text; }", "\n".join(formulas))
    page.click("#rank-button")
    page.locator("#progress").wait_for(state="visible")
    assert "Ranking 20,000 candidates" in page.inner_text("#progress-text")
    # above 10,000 rows the list runs as a job (POST /api/jobs) and the bar says how far it is
    page.wait_for_function("document.querySelector('#progress-text').textContent.includes('of 20,000 rows)')")
    # the page still reacts (JavaScript runs; the main thread is not blocked by the request)
    assert page.evaluate("1 + 1") == 2
    page.locator("#progress").wait_for(state="hidden", timeout=120_000)
    assert page.locator("#ranked tbody tr").count() == 100  # first page only: long lists are paginated
    assert "of 20,000" in page.inner_text("#page-info")
    page.click("#next-page")
    assert "rows 101–200" in page.inner_text("#page-info")


def test_a_long_list_runs_as_a_job_with_progress_and_downloads(page, tmp_path: Path) -> None:
    page.evaluate("jobRows = 3")  # the switch point, lowered so that a short list shows the job path
    posted: list[str] = []
    page.on("request", lambda req: posted.append(req.url.split("/", 3)[-1]) if req.method == "POST" else None)
    page.fill("#formulas", "\n".join(EXAMPLE_FORMULAS))
    page.click("#rank-button")
    page.wait_for_selector("#ranked tbody tr")
    assert posted == ["api/jobs"]  # not /api/rank
    statuses = _column(page, "status")
    assert len(statuses) == len(EXAMPLE_FORMULAS) and statuses[0] == "ranked"
    with page.expect_download() as info:
        page.click("#download-button")
    path = tmp_path / "ranked.csv"
    info.value.save_as(path)
    assert sorted(pd.read_csv(path, keep_default_na=False)["formula"]) == sorted(EXAMPLE_FORMULAS)
    assert posted == ["api/jobs"]  # the CSV is the job's result, not a second ranking


def test_token_protected_api_asks_for_the_token(browser, pytestconfig: pytest.Config, tmp_path: Path) -> None:
    url = shared_server(pytestconfig, tmp_path, SSE_SCREEN_API_TOKEN="page-token")
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.fill("#formulas", "Li3PS4")
    page.click("#rank-button")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "401" in error.inner_text() and "token" in error.inner_text()
    assert page.locator("#token-box").get_attribute("open") is not None
    page.fill("#token", "page-token")
    page.click("#rank-button")
    page.wait_for_selector("#ranked tbody tr")
    assert _column(page, "formula") == ["Li3PS4"] and page.locator("#error").is_hidden()
    context.close()


def test_variants_of_a_parent_are_generated_and_ranked(page, server: str) -> None:
    page.fill("#parents", "Li6PS5Cl, Xx2O")
    page.fill("#max_candidates", "12")
    page.click("#rank-button")
    page.wait_for_selector("#ranked tbody tr")
    page.check("#show-all")
    formulas, moves, statuses = _column(page, "formula"), _column(page, "move"), _column(page, "status")
    assert statuses.count("ranked") == 13  # the parent and its 12 most plausible variants
    assert moves[formulas.index("Li6PS5Cl")] == "parent"
    assert any(m.endswith(("Li compensates", "solid solution", "isovalent")) for m in moves)
    reasons = _column(page, "reason")
    assert "unknown element symbol 'Xx'" in reasons[formulas.index("Xx2O")]  # a bad parent is a row, not a failure
    import httpx

    bad = httpx.post(f"{server}/api/rank-variants", json={"parents": ["Li3PS4"], "fractions": [1.5]}, timeout=60)
    assert bad.status_code == 422 and "strictly between 0 and 1" in bad.json()["detail"]
