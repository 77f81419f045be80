"""Issue 10: the dashboard at /ui, driven in a real headless browser (Debian's chromium
through Playwright) against a real service with real sandboxes.

Set RESTOREBOX_SCREENSHOT=path to save a screenshot of the sandboxes page (the README's)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from restorebox.tools.client import Client
from tests.conftest import THIRD_PARTY, TOKEN, Manufacturing, copy_backup, query

pytestmark = pytest.mark.integration


def test_dashboard_in_a_real_browser(
    live_server: Any, backups_dir: Path, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    name = copy_backup(THIRD_PARTY / "northwind" / "northwind.sql", backups_dir)
    with live_server(snapshot_max_bytes=10**11) as server, Client(server.url, TOKEN) as client:
        context = browser.new_context(viewport={"width": 1400, "height": 800})
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        page = context.new_page()
        sent: list[str] = []
        page.on("request", lambda request: sent.append(request.url))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        # Without a token: the sign-in form; a wrong token is refused with a message.
        page.goto(f"{server.url}/ui")
        page.fill("#token", "not-the-token")
        page.click("#token-form button")
        expect(page.locator("#token-error")).to_contain_text("refused")

        # The token in the fragment: kept for the tab, gone from the address bar, never
        # sent to the server in a URL.
        page.goto(f"{server.url}/ui#token={TOKEN}")
        expect(page.locator("h1")).to_have_text("Sandboxes")
        assert TOKEN not in page.url
        assert page.evaluate("sessionStorage.getItem('restorebox.token')") == TOKEN

        # Backups catalog -> create a sandbox; its page follows it live to ready.
        page.click("nav a[data-view=backups]")
        row = page.locator(f"#backups tr[data-name='{name}']")
        expect(row).to_contain_text("complete")
        row.get_by_role("button", name="Create sandbox").click()
        expect(page.locator("#status")).to_contain_text("ready", timeout=120_000)
        expect(page.locator("#verdict")).to_contain_text("pass")
        expect(page.locator("#probes tbody tr")).to_have_count(13)
        expect(page.locator("#steps tbody tr")).to_have_count(1)
        sandbox_id = page.url.rsplit("/", 1)[1]
        sandbox = client.get(sandbox_id)
        assert sandbox.status == "ready"

        # A second sandbox made through the API shows up in the list with a live bar.
        second = client.create(name, wait=False)  # a copy of the first one's snapshot
        page.goto(f"{server.url}/ui#/")
        table = page.locator("#sandboxes")
        expect(table.locator(f"tr[data-id='{second.id}']")).to_be_visible()
        expect(table.locator(f"tr[data-id='{second.id}']")).to_contain_text(
            "ready", timeout=120_000
        )
        first_row = table.locator(f"tr[data-id='{sandbox_id}']")
        expect(first_row).to_contain_text("pass")
        first_row.get_by_role("button", name="Copy").click()
        assert page.evaluate("navigator.clipboard.readText()") == sandbox.url
        if os.environ.get("RESTOREBOX_SCREENSHOT"):
            page.screenshot(path=os.environ["RESTOREBOX_SCREENSHOT"], full_page=True)

        # Extend, reset, delete from the page.
        before = sandbox.data["expires_at"]
        first_row.get_by_role("button", name="Extend 1 h").click()
        deadline = time.monotonic() + 10
        while client.get(sandbox_id).data["expires_at"] <= before:
            assert time.monotonic() < deadline, "extend did not reach the service"
            time.sleep(0.1)
        with psycopg.connect(sandbox.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE scratch (id int)")
        page.locator(f"#sandboxes tr[data-id='{sandbox_id}']").get_by_role(
            "button", name="Reset"
        ).click()
        deadline = time.monotonic() + 60
        while not _reset_done(sandbox.url):
            assert time.monotonic() < deadline, "the reset from the page did not happen"
            time.sleep(0.2)
        expect(page.locator(f"#sandboxes tr[data-id='{sandbox_id}']")).to_contain_text(
            "ready", timeout=60_000
        )
        page.on("dialog", lambda dialog: dialog.accept())
        # A delete waits for the engine to remove containers: seconds on a busy machine.
        # The page says so at once (each delete is held back 2 s in the page to see it),
        # and the row goes when the delete is done.
        answer_late(
            page,
            """(method, path) => method === "DELETE" ? 2000
              : method === "GET" && path === "/v1/sandboxes" && window.lateList ? 1000 : 0""",
        )
        for sid in (sandbox_id, second.id):
            row = page.locator(f"#sandboxes tr[data-id='{sid}']")
            if sid == sandbox_id:  # a refresh still loading when Delete is clicked
                page.evaluate("() => { window.lateList = true; route(); }")
            with page.expect_response(
                lambda r, sid=sid: r.request.method == "DELETE" and r.url.endswith(sid)
            ) as deleted:
                row.get_by_role("button", name="Delete").click()
                expect(row).to_contain_text("Deleting…")
                if sid == sandbox_id:
                    page.wait_for_timeout(1200)  # the late refresh has come and gone
                    # Read once, not retried: nothing may have drawn over it.
                    assert "Deleting…" in (row.text_content() or "")
                    page.evaluate("() => { window.lateList = false; }")
            assert deleted.value.status == 204
            expect(row).to_have_count(0, timeout=60_000)
        assert client.sandboxes() == []
        page.evaluate("() => { window.fetch = window.plainFetch; }")

        # Snapshots page lists the one the first restore kept; copy, then delete it.
        page.click("nav a[data-view=snapshots]")
        expect(page.locator("#snapshots tbody tr")).to_have_count(1)
        page.get_by_role("button", name="Copy").click()
        expect(page.locator("#status")).to_contain_text("ready", timeout=60_000)
        copy_id = page.url.rsplit("/", 1)[1]
        assert client.get(copy_id).data["from_snapshot"] is True
        # Refused while the copy lives: the page is redrawn and the reason stays in view.
        page.click("nav a[data-view=snapshots]")
        page.locator("#snapshots").get_by_role("button", name="Delete").click()
        expect(page.locator("[role=alert]")).to_contain_text("delete them first", timeout=60_000)
        expect(page.locator("#snapshots").get_by_role("button", name="Delete")).to_be_enabled()
        client.delete(copy_id)
        page.locator("#snapshots").get_by_role("button", name="Delete").click()
        expect(page.locator(".empty")).to_contain_text("No snapshots", timeout=60_000)

        assert not [url for url in sent if TOKEN in url]
        assert errors == []
        context.close()


def answer_late(page: Any, delay: str) -> None:
    """Hold the page's requests back before they are sent: ``delay`` is a JavaScript
    function of (method, path) giving milliseconds. ``window.plainFetch`` undoes it."""
    page.evaluate(
        f"""() => {{
          const plain = window.fetch, delay = {delay};
          window.plainFetch = plain;
          window.fetch = async (path, options) => {{
            const late = delay((options && options.method) || "GET", String(path));
            if (late) await new Promise((r) => setTimeout(r, late));
            return plain(path, options);
          }};
        }}"""
    )


def _reset_done(url: str) -> bool:
    """The sandbox answers on its old URL and the table made before the reset is gone."""
    try:
        return query(url, "SELECT to_regclass('scratch')") == [(None,)]
    except psycopg.OperationalError:
        return False


def test_a_view_overtaken_while_it_loads_draws_nothing(live_server: Any, browser: Any) -> None:
    """A refresh of the sandboxes list still loading when the user opens another page
    (a delete's refresh, the list's timer) must not draw over that page."""
    from playwright.sync_api import expect

    with live_server() as server:
        page = browser.new_page()
        page.goto(f"{server.url}/ui#token={TOKEN}")
        expect(page.locator("h1")).to_have_text("Sandboxes")
        # The sandboxes list answers late from now on; then a refresh starts and the user
        # moves on to the snapshots page before it is answered.
        answer_late(page, '(method, path) => path === "/v1/sandboxes" ? 1500 : 0')
        page.evaluate('() => { route(); location.hash = "#/snapshots"; }')
        expect(page.locator("h1")).to_have_text("Snapshots")
        page.wait_for_timeout(2500)  # the late answer has come and gone
        # Read once, not retried: the stale page's own timer would bring this one back.
        assert page.locator("h1").text_content() == "Snapshots"
        page.close()


def test_a_backup_set_from_the_dashboard_and_tables_that_fit(
    live_server: Any, backups_dir: Path, browser: Any, manufacturing: Manufacturing
) -> None:
    """Issue 18, part 12: backups ticked in order make one sandbox (schema, then data);
    the images' readiness is shown; with long names, no page is wider than 1400 px."""
    from playwright.sync_api import expect

    stamp = "20250902_214058"
    schema = copy_backup(
        manufacturing.dir / "manufacturing_schema.sql",
        backups_dir,
        f"factory_pulse_schema_only_backup_{stamp}.sql",
    )
    data = copy_backup(
        manufacturing.dir / "manufacturing_data.sql",
        backups_dir,
        f"factory_pulse_data_only_backup_{stamp}.sql",
    )
    with live_server() as server, Client(server.url, TOKEN) as client:
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        page.goto(f"{server.url}/ui#token={TOKEN}")
        page.click("nav a[data-view=backups]")
        expect(page.locator("#images")).to_contain_text("ready")
        # Ticked data first, then schema; unticking data and ticking it again puts it last.
        for name in (data, schema):
            page.locator(f"#backups tr[data-name='{name}'] input.pick").check()
        expect(page.locator("#set")).to_contain_text(f"{data} → {schema}")
        page.locator(f"#backups tr[data-name='{data}'] input.pick").uncheck()
        expect(page.locator("#set")).to_be_hidden()
        page.locator(f"#backups tr[data-name='{data}'] input.pick").check()
        expect(page.locator("#set")).to_contain_text(f"{schema} → {data}")
        expect(page.locator(f"#backups tr[data-name='{schema}'] .order")).to_have_text("1")
        page.get_by_role("button", name="Create sandbox from 2 backups").click()
        expect(page.locator("#status")).to_contain_text("ready", timeout=120_000)
        sandbox = client.get(page.url.rsplit("/", 1)[1])
        assert sandbox.data["backups"] == [schema, data]
        assert [s["triggers_disabled"] for s in sandbox.data["restore"]["steps"]] == [False, True]
        for view in ("#/", "#/backups", f"#/sandboxes/{sandbox.id}"):
            page.goto(f"{server.url}/ui{view}")
            page.wait_for_selector("table")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 1400, (view, width)
        client.delete(sandbox.id)
        page.close()
