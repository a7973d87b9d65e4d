"""The workbench in a real browser (Playwright driving Debian's chromium) against the real stack: the API and
UI over HTTP (uvicorn), Celery workers, PostgreSQL, Redis and the S3 server; and in embedded mode.

Screenshots of each page go to $CLAIMLENS_SCREENSHOTS_DIR when set (docs/ui/ in the README is made that way:
``CLAIMLENS_SCREENSHOTS_DIR=docs/ui make test PYTEST_ARGS=tests/e2e/test_workbench_ui.py``), else to a
temporary folder.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.e2e.conftest import ADMIN_KEY, Stack, free_port
from tests.e2e.workbench_seed import Seeded, seed
from tests.support.photos import jpeg

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LAPTOP = {"width": 1366, "height": 900}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        # the same installer make test uses (apt chromium + pip playwright), for a run started by hand
        subprocess.run([str(REPO / "scripts" / "services"), "browser"], check=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = Path(os.environ.get("CLAIMLENS_SCREENSHOTS_DIR") or tmp_path_factory.mktemp("screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def wb(stack: Stack) -> Seeded:
    return seed(stack, secrets.token_hex(3))


def sign_in(browser, stack: Stack, key: str, viewport: dict | None = None, shot: Path | None = None):  # type: ignore[no-untyped-def]
    ctx = browser.new_context(base_url=stack.base_url, viewport=viewport or LAPTOP)
    page = ctx.new_page()
    page.goto("/ui/")
    assert "/ui/signin" in page.url  # no session: the queue sends us to sign in
    page.get_by_label("API key").fill(key)
    if shot:
        page.screenshot(path=str(shot))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/$"))
    return ctx, page


def images_loaded(page) -> None:  # type: ignore[no-untyped-def]
    """Scroll through the page so lazy images load, wait until every image has pixels, scroll back. Images
    folded inside a closed <details> (a group's other findings) are not rendered, so lazy ones never load."""
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function("() => Array.from(document.images).filter(i => !i.closest('details:not([open])'))"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    page.evaluate("() => window.scrollTo(0, 0)")


def api(stack: Stack, key: str = ADMIN_KEY) -> httpx.Client:
    return stack.client(key)


def test_investigator_triage_decision_audit(browser, stack: Stack, wb: Seeded, shots: Path) -> None:  # type: ignore[no-untyped-def]
    a1, a2, cc = wb.claims["A1"], wb.claims["A2"], wb.claims["C"]
    ctx, page = sign_in(browser, stack, wb.keys[wb.names["inv"]], shot=shots / "signin.png")
    cookie = next(c for c in ctx.cookies() if c["name"] == "cl_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]  # plain http here

    # filter the queue: this run's claims, high severity
    page.get_by_label("Search").fill(f"WB-{wb.run}")
    page.get_by_label("Severity").select_option("high")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"severity=high"))
    rows = page.locator("table.queue tbody tr[data-href]")
    assert rows.count() == 3
    listed = [rows.nth(i).get_attribute("data-href").rsplit("/", 1)[1] for i in range(3)]
    assert set(listed) == {a2, cc, wb.claims["B1"]} and a1 not in listed
    assert "3 claims match" in page.locator("#queue-summary").inner_text()
    page.screenshot(path=str(shots / "queue.png"), full_page=True)

    # keyboard: j selects the first row, Enter opens it
    page.locator("body").press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(f"/ui/claims/{listed[0]}") + "$"))

    # open a claim: photos with thumbnails (presigned S3 URLs), findings with evidence
    page.goto(f"/ui/claims/{a2}")
    first_thumb = page.locator("a.thumb img").first
    first_thumb.wait_for()
    images_loaded(page)
    assert page.locator(".finding.high").count() >= 1
    assert page.locator("dl.exif").count() >= 1
    page.screenshot(path=str(shots / "claim.png"), full_page=True)

    # findings are shown as the report's fact groups: A2's photo p1 (identical bytes to A1's) is flagged by
    # both duplicate checks, and the page shows that fact once, the other finding folded underneath
    with api(stack) as c:
        report = c.get(f"/v1/claims/{a2}/report").json()
    groups = page.locator("section.group")
    assert groups.count() == len(report["groups"]) and page.locator(".finding").count() == len(report["findings"])
    both = [g for g in report["groups"] if {"exact_duplicate", "reused_photo"} <= set(g["checks"])]
    assert len(both) == 1 and len(both[0]["members"]) >= 2, report["groups"]
    group = page.locator(f"section.group#{both[0]['group_id']}")
    assert group.count() == 1
    lead_code = report["findings"][both[0]["lead"]]["code"]
    assert group.locator(":scope > .finding code").first.inner_text() == lead_code
    members = group.locator("details.group-members .finding")
    assert members.count() == len(both[0]["members"]) - 1 and not members.first.is_visible()
    group.locator("details.group-members > summary").click()
    assert members.first.is_visible()
    assert {group.locator(".finding code").nth(i).inner_text() for i in range(len(both[0]["members"]))} == {
        report["findings"][m]["code"] for m in both[0]["members"]}
    # the folded finding keeps its own decision form
    assert members.first.locator("form.decide input[name=finding_key]").count() == 1

    # the stored HTML report opens through the session (no X-API-Key needed in the browser)
    with ctx.expect_page() as report_info:
        page.get_by_role("link", name="HTML report").click()
    report_page = report_info.value
    report_page.wait_for_load_state()
    assert a2 in report_page.content() and report_page.url.endswith(f"/ui/claims/{a2}/report.html")
    report_page.close()

    # a match's evidence opens full size through a short-lived presigned URL of the object store
    with ctx.expect_page() as popup_info:
        page.locator(".finding.high a.evidence-link").first.click()
    popup = popup_info.value
    popup.wait_for_load_state()
    assert "X-Amz-Signature=" in popup.url and "X-Amz-Expires=300" in popup.url
    assert popup.evaluate("document.images.length && document.images[0].naturalWidth") > 0
    popup.screenshot(path=str(shots / "evidence.png"))
    popup.close()

    # the linked-claims graph from A1 (two hops reach C); a click on C's node opens C
    page.goto(f"/ui/claims/{a1}")
    page.get_by_role("link", name="Linked-claims graph").click()
    page.wait_for_selector("#graph[data-ready='1']")
    assert page.locator("table tbody tr").count() >= 3  # the links, also as a table
    page.screenshot(path=str(shots / "graph.png"))
    pos = page.evaluate("id => window.claimGraph.getElementById(id).renderedPosition()", cc)
    box = page.locator("#graph").bounding_box()
    page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])
    page.wait_for_url(re.compile(re.escape(f"/ui/claims/{cc}") + "$"))

    # record a decision on A2's high finding (dismiss with a reason), then the claim outcome
    page.goto(f"/ui/claims/{a2}")
    finding = page.locator(".finding.high").first
    code = finding.locator("code").first.inner_text()
    finding.get_by_role("radio", name="Dismiss").check()
    finding.get_by_label("Reason (to dismiss)").select_option("same_car_second_visit")
    finding.get_by_label("Note").fill("re-survey of the same car")
    finding.get_by_role("button", name="Save decision").click()
    page.wait_for_url(re.compile(r"saved=dismiss"))
    assert "Decision recorded" in page.locator("[role=status]").inner_text()
    assert "Dismiss" in page.locator(".finding.high").first.locator(".badge.decided").inner_text()
    page.get_by_label("Set outcome").select_option("referred_siu")
    page.get_by_role("button", name="Save outcome").click()
    page.wait_for_url(re.compile(r"saved=referred_siu"))
    assert "Referred to SIU" in page.locator("#outcome").inner_text()

    # the report JSON the workbench links to carries the decisions, the same block the API serves
    decided_key = page.locator(".finding.high").first.locator("input[name=finding_key]").get_attribute("value")
    r = ctx.request.get(f"/ui/claims/{a2}/report.json")
    assert r.status == 200 and r.headers["content-type"].startswith("application/json")
    ui_report = r.json()
    assert ui_report["decisions"]["findings"][decided_key]["action"] == "dismiss"
    assert ui_report["decisions"]["outcome"]["action"] == "referred_siu"
    assert decided_key in {f["finding_key"] for f in ui_report["findings"]}
    with api(stack) as c:
        assert c.get(f"/v1/claims/{a2}/report").json()["decisions"] == ui_report["decisions"]

    # the precision table counts it
    page.goto("/ui/admin/precision")
    row = page.locator("table.precision tr", has=page.locator(f"code:text-is('{code}')"))
    assert row.count() >= 1 and "1" in row.first.locator("td").nth(4).inner_text()
    page.screenshot(path=str(shots / "precision.png"), full_page=True)
    with api(stack) as c:
        stats = c.get("/v1/stats/decisions").json()["rows"]
        assert any(r["code"] == code and r["dismissed"] >= 1 for r in stats)
    # investigators do not read the audit log
    assert page.goto("/ui/admin/audit").status == 403

    # the queue filters by decision state
    page.goto(f"/ui/?q={a2}&decision=referred_siu")
    assert page.locator("table.queue tbody tr[data-href]").count() == 1

    # sign out: the session is revoked on the server, the old cookie is worthless
    page.goto("/ui/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/ui/signin"))
    stale = httpx.get(f"{stack.base_url}/ui/", cookies={"cl_session": cookie["value"]}, follow_redirects=False)
    assert stale.status_code == 303 and "/ui/signin" in stale.headers["location"]
    ctx.close()

    # an admin sees the decision and the reads in the audit log, with filters
    actx, apage = sign_in(browser, stack, ADMIN_KEY)
    apage.goto(f"/ui/admin/audit?principal={wb.names['inv']}&claim_id={a2}")
    text = apage.locator("table.audit").inner_text()
    for action in ("decision: dismiss", "decision: referred_siu", "read_evidence", "read_photo", "read_claim",
                   "read_report"):
        assert action in text, action
    assert "127.0.0.1" in text
    apage.screenshot(path=str(shots / "audit.png"), full_page=True)
    apage.goto(f"/ui/admin/audit?principal={wb.names['inv']}&action=list_claims")
    assert apage.locator("table.audit tbody tr").count() >= 2  # the queue views
    apage.goto(f"/ui/admin/audit?principal={wb.names['inv']}&action=sign_out")
    assert apage.locator("table.audit tbody tr").count() == 1
    actx.close()


def test_csrf_is_refused_without_the_token(browser, stack: Stack, wb: Seeded) -> None:  # type: ignore[no-untyped-def]
    a2 = wb.claims["A2"]
    with api(stack, wb.keys[wb.names["inv"]]) as c:
        before = len(c.get(f"/v1/claims/{a2}/decisions").json()["history"])
    ctx, page = sign_in(browser, stack, wb.keys[wb.names["inv"]])
    form = {"action": "cleared", "note": "forged"}
    r = ctx.request.post(f"/ui/claims/{a2}/decisions", form=form, max_redirects=0)
    assert r.status == 403 and "security token" in r.text()
    r = ctx.request.post(f"/ui/claims/{a2}/decisions", form={**form, "csrf_token": "x" * 43}, max_redirects=0)
    assert r.status == 403
    r = ctx.request.post(f"/ui/claims/{a2}/decisions", form={**form, "csrf_token": "é" * 43}, max_redirects=0)
    assert r.status == 403  # not a 500: tokens are compared as bytes
    r = ctx.request.post("/ui/signout", form={}, max_redirects=0)
    assert r.status == 403  # sign-out is a form too
    # a sign-in form posted from elsewhere (no sign-in CSRF cookie) is refused
    r = httpx.post(f"{stack.base_url}/ui/signin", data={"api_key": ADMIN_KEY, "csrf_token": "abc"})
    assert r.status_code == 403 and "cl_session" not in r.cookies
    with api(stack, wb.keys[wb.names["inv"]]) as c:
        assert len(c.get(f"/v1/claims/{a2}/decisions").json()["history"]) == before
    # with the page's own token the same form works
    token = page.goto(f"/ui/claims/{a2}") and page.locator("input[name=csrf_token]").first.get_attribute("value")
    r = ctx.request.post(f"/ui/claims/{a2}/decisions", form={**form, "csrf_token": token}, max_redirects=0)
    assert r.status == 303
    ctx.close()


def test_adjuster_cannot_open_another_adjusters_claim(browser, stack: Stack, wb: Seeded, shots: Path) -> None:  # type: ignore[no-untyped-def]
    a1, b1 = wb.claims["A1"], wb.claims["B1"]
    with api(stack) as c:
        photo_a1 = c.get(f"/v1/claims/{a1}/photos").json()[0]["photo_id"]
        report = c.get(f"/v1/claims/{a1}/report").json()
    ev_key = next((k for f in report["findings"] for k in f["evidence_images"].values()), f"claims/{a1}/x.jpg")
    ctx, page = sign_in(browser, stack, wb.keys[wb.names["adj_b"]], viewport=TABLET)
    page.goto(f"/ui/?q=WB-{wb.run}")
    listed = page.locator("table.queue tbody tr[data-href]")
    assert listed.count() == 1 and listed.first.get_attribute("data-href").endswith(b1)
    assert page.get_by_label("Adjuster").count() == 0  # adjusters do not filter by other adjusters
    page.screenshot(path=str(shots / "queue-tablet-adjuster.png"), full_page=True)
    for url in (f"/ui/claims/{a1}", f"/ui/claims/{a1}/graph", f"/ui/claims/{a1}/photos/{photo_a1}/original",
                f"/ui/claims/{a1}/photos/{photo_a1}/thumbnail", f"/ui/claims/{a1}/evidence?key={ev_key}",
                f"/ui/claims/{b1}/photos/{photo_a1}/original", f"/ui/claims/{a1}/report.html", f"/ui/claims/{a1}/report.json",
                f"/ui/?q={a1}"):
        resp = page.goto(url)
        if url.startswith("/ui/?"):
            assert page.locator("table.queue tbody tr[data-href]").count() == 0
        else:
            assert resp.status == 404, url
            assert a1 not in (page.locator("main").inner_text().replace(f"No claim {a1} that you can open.", ""))
    # the own claim opens; its graph leaves the other adjuster's claims out
    assert page.goto(f"/ui/claims/{b1}").status == 200
    assert page.locator("form.decide").count() == 0  # adjusters do not decide
    assert page.get_by_role("link", name=a1).count() == 0  # no link to a claim that would not open
    images_loaded(page)
    page.screenshot(path=str(shots / "claim-tablet-adjuster.png"))
    page.goto(f"/ui/claims/{b1}/graph")
    page.wait_for_selector("#graph[data-ready='1']")
    assert a1 not in page.locator("main").inner_text()
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    r = ctx.request.post(f"/ui/claims/{a1}/decisions", form={"action": "cleared", "csrf_token": token},
                         max_redirects=0)
    assert r.status in (403, 404)
    assert page.goto("/ui/admin/precision").status == 403
    ctx.close()


def test_idle_session_sends_the_browser_to_sign_in(browser, stack: Stack, wb: Seeded) -> None:  # type: ignore[no-untyped-def]
    """A second API process of the same stack with a 6-second idle expiry: a page opened after the idle time
    sends the browser to sign in (and back to that page after signing in again); the old cookie stays dead."""
    idle_s = 6
    proc, base = stack.start_api("api-short-idle", env={**stack.env,
                                                        "CLAIMLENS_UI__SESSION_IDLE_MINUTES": str(idle_s / 60)},
                                 workers=1)
    try:
        a2 = wb.claims["A2"]
        ctx = browser.new_context(base_url=base, viewport=LAPTOP)
        page = ctx.new_page()
        page.goto(f"/ui/claims/{a2}")
        assert "/ui/signin" in page.url
        page.get_by_label("API key").fill(wb.keys[wb.names["inv"]])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(re.escape(f"/ui/claims/{a2}") + "$"))  # back to the page asked for
        cookie = next(c for c in ctx.cookies() if c["name"] == "cl_session")["value"]
        time.sleep(idle_s + 2)  # no request for longer than the idle expiry
        page.goto(f"/ui/claims/{a2}")
        page.wait_for_url(re.compile(r"/ui/signin\?next="))
        assert page.get_by_label("API key").is_visible()
        assert a2 not in page.locator("main").inner_text()
        # the expired session is ended on the server: the old cookie does not come back to life
        stale = httpx.get(f"{base}/ui/", cookies={"cl_session": cookie}, follow_redirects=False)
        assert stale.status_code == 303 and "/ui/signin" in stale.headers["location"]
        # signing in again returns to the claim page
        page.get_by_label("API key").fill(wb.keys[wb.names["inv"]])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(re.escape(f"/ui/claims/{a2}") + "$"))
        assert page.locator("section.group").count() >= 1
        ctx.close()
    finally:
        stack.stop(proc)


def test_embedded_mode_serves_the_scanned_claims(browser, tmp_path: Path, run_id: str) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime, timedelta, timezone

    claims = tmp_path / "claims"
    shared = jpeg(f"{run_id}-emb-shared", when=datetime(2026, 4, 1, 9, 0, tzinfo=timezone(timedelta(hours=8))))
    for i, name in enumerate(("EMB-1", "EMB-2")):
        folder = claims / name
        folder.mkdir(parents=True)
        (folder / "shared.jpg").write_bytes(shared)
        (folder / "own.jpg").write_bytes(jpeg(f"{run_id}-emb-{i}"))
        (folder / "claim.json").write_text(f'{{"report_time": "2026-04-0{i + 1}T10:00:00+08:00"}}')
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMLENS_")}
    subprocess.run([sys.executable, "-m", "claimlens.cli", "scan", str(claims), "--data-dir", str(data)],
                   cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "claimlens.cli", "ui", "--data-dir", str(data), "--port",
                             str(port)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        ctx = browser.new_context(base_url=base, viewport=LAPTOP)
        page = ctx.new_page()
        page.goto("/ui/")  # no sign-in: the local investigator
        assert "local" in page.locator("header").inner_text()
        assert page.locator("table.queue tbody tr[data-href]").count() == 2
        page.goto("/ui/claims/EMB-2")
        img = page.locator("a.thumb img").first
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
        hop = ctx.request.get(img.get_attribute("src"), max_redirects=0)
        src = base + hop.headers["location"]
        assert hop.status == 302 and "/v1/objects/claims/EMB-2/" in src and "signature=" in src
        assert httpx.get(src).content[:2] == b"\xff\xd8"
        # a tampered signature serves nothing
        assert httpx.get(re.sub(r"signature=[0-9a-f]+", "signature=" + "0" * 64, src)).status_code == 403
        assert page.locator(".finding.high").count() >= 1
        page.get_by_role("link", name="Linked-claims graph").click()
        page.wait_for_selector("#graph[data-ready='1']")
        assert "EMB-1" in page.locator("main").inner_text()
        ctx.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
