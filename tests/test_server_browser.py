"""The workbench page in a real browser: headless Chromium (Debian's chromium + chromium-driver)
driven by selenium against `promptkit serve` running in this process on a free loopback port.

Skips with the reason when Chromium, chromedriver, selenium or the Danbooru list is missing.
``PROMPTKIT_SCREENSHOT=docs/workbench.png`` makes the layout test save the README screenshot.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import DANBOORU_CSV, needs_tags

pytest.importorskip("starlette", reason="the server extra is not installed (pip install 'sdxl-promptkit[server]')")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install 'sdxl-promptkit[server]')")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install 'promptkit[test]')")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

import promptkit as pk  # noqa: E402
from promptkit.server import Workbench, create_app  # noqa: E402

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and os.path.exists(p)), None)
CHROMEDRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and os.path.exists(p)), None)

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="no headless Chromium here (apt-get install chromium chromium-driver gives /usr/bin/chromium "
               "and /usr/bin/chromedriver)",
    ),
    needs_tags,  # 'hats' -> 'hatsune miku' needs the real Danbooru list
]

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,800")
SCREENSHOT_PROMPT = (
    "masterpiece, best quality, 1girl, solo, karin_(blue_archive), long hair, black hair, yellow eyes, halo, "
    "maid headdress, maid, black dress, white apron, puffy short sleeves, frilled apron, looking at viewer, "
    "smile, blush, holding tray, teacup, indoors, cafe, window, sunlight, light particles, depth of field, "
    "(bokeh:1.2), from side, upper body, cowboy shot, detailed background, very aesthetic, absurdres, "
    "hatsune miku \\(cosplay\\), twintails BREAK by kant"
)


@pytest.fixture(scope="module")
def server():
    bench = Workbench.load([DANBOORU_CSV])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP: asyncio sets NODELAY
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    srv = uvicorn.Server(uvicorn.Config(create_app(bench), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the workbench server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", bench
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    profile_dir = tempfile.mkdtemp(prefix="promptkit-chromium-")
    opts.add_argument(f"--user-data-dir={profile_dir}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(10)
    yield driver
    driver.quit()
    shutil.rmtree(profile_dir, ignore_errors=True)


def viewport(driver, width, height):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


@pytest.fixture
def page(server, browser):
    url, _ = server
    viewport(browser, 1280, 800)
    browser.get(url + "/")
    wait(browser, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    browser.get_log("browser")  # start each test with an empty console
    yield browser
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"the page logged errors: {errors}"


def wait(driver, cond, timeout=10, message=""):
    return WebDriverWait(driver, timeout, poll_frequency=0.02).until(cond, message)


def editor(driver, field="prompt"):
    return driver.find_element(By.ID, field)


def set_text(driver, field, text):
    """Put text into an editor the way a paste does (one input event)."""
    driver.execute_script(
        "const t = document.getElementById(arguments[0]); t.focus(); t.value = arguments[1];"
        "t.setSelectionRange(t.value.length, t.value.length);"
        "t.dispatchEvent(new InputEvent('input', {bubbles: true, inputType: 'insertFromPaste'}));",
        field, text)


def value(driver, field="prompt"):
    return driver.execute_script("return document.getElementById(arguments[0]).value", field)


def suggestions(driver):
    return driver.execute_script(
        "const l = document.getElementById('suggestions');"
        "return l.hidden ? [] : [...l.children].map(li => [li.dataset.tag, li.className,"
        " li.getAttribute('aria-selected'), li.innerText]);")


def wait_idle(driver):
    """Until the lint and chunk answers for the current text have been drawn."""
    time.sleep(0.2)  # the page waits 150 ms after the last keystroke before it asks
    wait(driver, lambda d: d.execute_script("return performance.getEntriesByType('resource')"
                                            ".every(e => e.responseEnd > 0)"))


# -- autocomplete ----------------------------------------------------------------


def test_hats_then_tab_inserts_hatsune_miku(page):
    editor(page).send_keys("hats")
    wait(page, lambda d: suggestions(d) and suggestions(d)[0][0] == "hatsune_miku", message=str(suggestions(page)))
    first = suggestions(page)[0]
    assert "cat-character" in first[1] and first[2] == "true"
    assert "hatsune miku" in first[3] and "107k" in first[3]  # the post count, shortened
    editor(page).send_keys(Keys.TAB)
    assert value(page) == "hatsune miku, "
    assert suggestions(page) == []
    assert page.switch_to.active_element == editor(page)  # Tab inserted; focus stayed


def test_arrows_enter_and_escape(page, server):
    _, bench = server
    expected = bench.db.complete("long", limit=10, profile=bench.default_profile)
    ta = editor(page)
    ta.send_keys("1girl, long")
    wait(page, lambda d: [s[0] for s in suggestions(d)] == [s.tag for s in expected])
    ta.send_keys(Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ARROW_UP)
    assert [s[2] for s in suggestions(page)][:2] == ["false", "true"]
    ta.send_keys(Keys.ENTER)
    assert value(page) == f"1girl, {expected[1].insert_text}, "
    ta.send_keys("smil")
    wait(page, lambda d: suggestions(d))
    ta.send_keys(Keys.ESCAPE)
    assert suggestions(page) == []
    ta.send_keys(Keys.TAB)  # no list open: Tab leaves the editor
    assert value(page).endswith(", smil") and page.switch_to.active_element != ta


def test_alias_is_shown_as_alias_arrow_tag(page):
    editor(page).send_keys("longhair")
    wait(page, lambda d: suggestions(d) and suggestions(d)[0][0] == "long_hair")
    assert "longhair → long hair" in suggestions(page)[0][3]


def test_rouwei_inserts_artists_with_by(page):
    from selenium.webdriver.support.ui import Select

    Select(page.find_element(By.ID, "profile")).select_by_value("rouwei")
    editor(page).send_keys("1girl BREAK kantok")
    wait(page, lambda d: suggestions(d) and suggestions(d)[0][0] == "kantoku")
    editor(page).send_keys(Keys.TAB)
    assert value(page) == "1girl BREAK by kantoku, "


# -- chunk marks -------------------------------------------------------------------


def test_a_100_tag_prompt_marks_where_a1111_starts_chunk_2(page, server):
    _, bench = server
    # (a tag such as "#unicus (idolmaster)" would start an A1111 comment: what follows is not encoded)
    tags = [t for t in bench.db.tags("general") if "#" not in t.name][:100]
    prompt = ", ".join(pk.tags.format_tag(t.name) for t in tags)
    cl = pk.encoded(prompt).longest.chunks
    assert len(cl) >= 2
    start2 = cl[1].spans[1].start  # A1111's chunker: the first token of chunk 2
    set_text(page, "prompt", prompt)
    mark = wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, '#prompt ~ * .cmark[data-chunk="2"], '
                                                '.field[data-field="positive"] .cmark[data-chunk="2"]'))[0]
    assert int(mark.get_attribute("data-offset")) == start2
    before = page.execute_script(
        "const m = arguments[0], r = document.createRange();"
        "r.setStart(m.closest('.layer'), 0); r.setEndBefore(m); return r.toString();", mark)
    assert before == prompt[:start2]  # the mark sits in the text right before that token
    bar = page.execute_script(
        "const s = getComputedStyle(arguments[0], '::before'), r = arguments[0].getBoundingClientRect();"
        "return [s.borderLeftWidth, s.borderLeftStyle, r.height, r.top >= 0];", mark)
    assert bar[0] == "2px" and bar[1] == "solid" and bar[2] > 10 and bar[3]
    counter = page.find_element(By.ID, "prompt-counter").text
    assert counter == f"{cl.token_count} / {cl.target_token_count}"
    items = page.find_elements(By.CSS_SELECTOR, "#prompt-chunks li")
    assert len(items) == len(cl)
    assert f"{cl[0].n_content}/75" in items[0].text


def test_break_and_back_tracked_text_are_marked(page):
    prompt = ", ".join(["smile"] * 36) + ", very long hair ornament thing BREAK by kantoku"
    set_text(page, "prompt", prompt)
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, ".field[data-field='positive'] mark.moved"))
    moved = page.find_element(By.CSS_SELECTOR, ".field[data-field='positive'] mark.moved").get_attribute("textContent")
    assert moved == "very long hair"
    brk = page.find_element(By.CSS_SELECTOR, ".field[data-field='positive'] mark.brk").get_attribute("textContent")
    assert brk == "BREAK"
    chips = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#prompt-chunks li")]
    assert "3 tokens moved on" in chips[0] and "ended by BREAK" in chips[1]


# -- lint and fixes -------------------------------------------------------------------


def test_unescaped_character_tag_is_marked_and_fixed_in_one_click(page):
    set_text(page, "prompt", "1girl, karin_(blue_archive), smile")
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#problems li[data-code='PK202']"))
    marks = page.find_elements(By.CSS_SELECTOR, ".field[data-field='positive'] mark.lint-error")
    assert [m.get_attribute("textContent") for m in marks] == ["karin_(blue_archive)"]
    problem = page.find_element(By.CSS_SELECTOR, "#problems li[data-code='PK202']")
    assert "PK202" in problem.text and "read as emphasis" in problem.text
    problem.find_element(By.CSS_SELECTOR, "button.fix").click()
    wait(page, lambda d: value(d) == "1girl, karin \\(blue archive\\), smile", message=value(page))
    wait(page, lambda d: not d.find_elements(By.CSS_SELECTOR, "#problems li[data-code='PK202']"))


def test_the_note_under_the_editor_says_the_problem_at_the_cursor(page):
    set_text(page, "prompt", "1girl, (smile")
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#problems li[data-code='PK101']"))
    page.execute_script("const t = document.getElementById('prompt'); t.focus(); t.setSelectionRange(7, 7);")
    wait(page, lambda d: "PK101" in d.find_element(By.ID, "prompt-note").text)


def test_fix_all_and_keyboard_reach_of_the_problem_buttons(page):
    set_text(page, "prompt", "1girl, karin_(blue_archive), smile, smile")
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#problems li[data-code='PK501']"))
    fixall = page.find_element(By.ID, "fixall-btn")
    fixall.send_keys(Keys.ENTER)  # a button works from the keyboard
    wait(page, lambda d: value(d) == "1girl, karin \\(blue archive\\), smile")


def test_normalize_shows_the_changes_before_applying(page, server):
    from selenium.webdriver.support.ui import Select

    _, bench = server
    Select(page.find_element(By.ID, "profile")).select_by_value("rouwei")
    prompt = "karin_(blue_archive), kantoku, 1girl"
    set_text(page, "prompt", prompt)
    page.find_element(By.ID, "normalize-btn").click()
    dialog = wait(page, lambda d: d.find_element(By.ID, "normalize-dialog") if
                  d.find_element(By.ID, "normalize-dialog").get_attribute("open") is not None else None)
    diff = dialog.find_element(By.CSS_SELECTOR, "pre.diff[data-field='prompt']")
    assert diff.find_elements(By.TAG_NAME, "del") and diff.find_elements(By.TAG_NAME, "ins")
    assert value(page) == prompt  # nothing applied yet
    assert page.switch_to.active_element == page.find_element(By.ID, "normalize-apply")
    page.switch_to.active_element.send_keys(Keys.ENTER)
    expected = pk.normalize(prompt, db=bench.db, profile="rouwei")
    wait(page, lambda d: value(d) == expected, message=value(page))
    assert page.find_element(By.ID, "normalize-dialog").get_attribute("open") is None


# -- infotext ---------------------------------------------------------------------------


def test_infotext_paste_fills_prompt_negative_and_settings(page):
    block = ("masterpiece, 1girl, karin \\(blue archive\\), smile\n"
             "Negative prompt: worst quality, low quality\n"
             "Steps: 28, Sampler: Euler a, CFG scale: 50, Seed: 1, Size: 832x1216, Model: rouwei")
    page.find_element(By.CSS_SELECTOR, "#infotext-box summary").click()
    box = page.find_element(By.ID, "infotext")
    page.execute_script("arguments[0].value = arguments[1];", box, block)
    page.find_element(By.ID, "infotext-btn").click()
    wait(page, lambda d: value(d, "settings") != "")
    assert value(page, "prompt") == "masterpiece, 1girl, karin \\(blue archive\\), smile"
    assert value(page, "negative") == "worst quality, low quality"
    assert value(page, "settings").startswith("Steps: 28, Sampler: Euler a, CFG scale: 50")
    # the settings are linted: CFG 50 is far outside the profile's range, marked in the settings line
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#problems li[data-field='settings'][data-code='PK701']"))
    marked = page.find_elements(By.CSS_SELECTOR, ".field[data-field='settings'] mark")
    assert "50" in [m.get_attribute("textContent") for m in marked]


# -- layout -------------------------------------------------------------------------------


def _no_sideways_scroll(driver):
    return driver.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_readable_at_1280x800_and_on_a_narrow_window(page):
    from selenium.webdriver.support.ui import Select

    Select(page.find_element(By.ID, "profile")).select_by_value("rouwei")
    set_text(page, "prompt", SCREENSHOT_PROMPT)
    set_text(page, "negative", "worst quality, low quality, watermark")
    wait_idle(page)
    rect = lambda el: page.execute_script("return arguments[0].getBoundingClientRect().toJSON()", el)  # noqa: E731
    ed, side = rect(editor(page)), rect(page.find_element(By.CSS_SELECTOR, ".side"))
    assert _no_sideways_scroll(page)
    assert side["left"] >= ed["right"] and ed["width"] >= 700  # two columns, a wide editor
    assert page.find_elements(By.CSS_SELECTOR, ".field[data-field='positive'] .cmark")
    ta = editor(page)
    ta.send_keys("o")  # "by kanto": the suggestions open under the cursor
    wait(page, lambda d: suggestions(d) and suggestions(d)[0][0] == "kantoku")
    box = rect(page.find_element(By.ID, "suggestions"))
    assert box["right"] <= 1280 and box["top"] > ed["top"]
    shot = os.environ.get("PROMPTKIT_SCREENSHOT")
    if shot:
        time.sleep(0.3)
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        assert page.save_screenshot(shot)
    ta.send_keys(Keys.ESCAPE)

    viewport(page, 400, 800)
    time.sleep(0.2)
    ed, side = rect(editor(page)), rect(page.find_element(By.CSS_SELECTOR, ".side"))
    assert _no_sideways_scroll(page)
    assert side["top"] >= ed["bottom"] and ed["width"] >= 330  # one column
    # the editor's backdrop still lines up with the textarea text after the reflow
    mark = page.find_element(By.CSS_SELECTOR, ".field[data-field='positive'] .cmark")
    assert mark.get_attribute("data-offset") is not None


def test_keyboard_alone_reaches_every_control(page):
    page.execute_script("document.activeElement && document.activeElement.blur(); window.focus();")
    order = []
    body = page.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(12):
        el = page.switch_to.active_element
        order.append(el.get_attribute("id") or el.tag_name)
        el.send_keys(Keys.TAB)
    for wanted in ("profile", "backend", "normalize-btn", "fixall-btn", "prompt", "negative", "settings"):
        assert wanted in order, order
    assert order.index("prompt") < order.index("negative") < order.index("settings")
