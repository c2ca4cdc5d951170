"""The workbench JSON API (promptkit serve) through Starlette's test client: every endpoint,
bad input for each, the body-size cap, the Host guard, the default host, the OpenAPI document."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed (pip install 'sdxl-promptkit[server]')")
pytest.importorskip("httpx", reason="httpx (Starlette's test client) is not installed")

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import promptkit as pk  # noqa: E402
from promptkit.cli import build_parser, main  # noqa: E402
from promptkit.server import Workbench, create_app, tag_at  # noqa: E402
from promptkit.server.api import ENDPOINTS  # noqa: E402
from promptkit.server.preview import text_changes  # noqa: E402
from promptkit.tags import TagDB  # noqa: E402

ROWS = [
    ("1girl", 0, 6008644, "1girls,sole_female"),
    ("long_hair", 0, 4350743, "/lh,longhair"),
    ("long_sleeves", 0, 1000000, ""),
    ("smile", 0, 3000000, ""),
    ("hatsune_miku", 4, 106634, "miku_hatsune"),
    ("hatsutori_hajime", 4, 4121, ""),
    ("karin_(blue_archive)", 4, 5798, ""),
    ("kantoku", 1, 2331, ""),
    ("fate/stay_night", 3, 40000, ""),
    ("blue_archive", 3, 300000, ""),
    ("thighhighs", 0, 1100000, "thighhigh"),
    ("single_thighhigh", 0, 57000, "thighhigh"),
]
LOOPBACK = "http://127.0.0.1"


@pytest.fixture(scope="module")
def bench():
    return Workbench(TagDB.from_rows(ROWS, source="danbooru"))


@pytest.fixture(scope="module")
def client(bench):
    with TestClient(create_app(bench), base_url=LOOPBACK) as c:
        yield c


def post(client, path, body, **kw):
    return client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"}, **kw)


def bad(resp, field, status=400):
    assert resp.status_code == status, resp.text
    data = resp.json()
    assert data["error"]
    if field is not None:
        assert data.get("field") == field, data
        if status == 400:
            assert field in data["error"]
    return data["error"]


# -- health, profiles, page, schema ---------------------------------------------


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    data = r.json()
    assert data["status"] == "ok" and data["version"] == pk.__version__
    assert data["tags"]["count"] == len(ROWS)
    assert data["default_profile"] == "illustrious"


def test_profiles_lists_every_bundled_profile(client):
    from promptkit.profiles import available_profiles, load_profile

    data = client.get("/api/profiles").json()
    names = {p["name"] for p in data["profiles"]}
    assert names == {load_profile(n).name for n in available_profiles()}
    assert data["default"] == "illustrious" and data["backends"] == ["a1111", "comfy", "diffusers"]
    rouwei = next(p for p in data["profiles"] if p["name"] == "rouwei")
    assert rouwei["artist_prefix"] == "by "


def test_page_and_static_files_are_served_from_memory_with_a_csp(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert '<script type="module" src="/static/app.js">' in r.text
    for name in ("app.js", "style.css"):
        s = client.get(f"/static/{name}")
        assert s.status_code == 200 and s.content
        again = client.get(f"/static/{name}", headers={"If-None-Match": s.headers["etag"]})
        assert again.status_code == 304
    assert "http://" not in client.get("/static/app.js").text.replace("http://127.0.0.1", "")  # no CDN
    bad(client.get("/static/nope.js"), None, 404)
    bad(client.get("/static/..%2F__init__.py"), None, 404)


def test_unknown_route_and_wrong_method_answer_json(client):
    assert "Not Found" in bad(client.get("/api/nothing"), None, 404)
    assert bad(client.get("/api/lint"), None, 405)
    assert bad(post(client, "/api/complete", {"q": "a"}), None, 405)


def test_openapi_documents_every_endpoint_and_field(client):
    import jsonschema

    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for ep in ENDPOINTS:
        op = doc["paths"][ep.path][ep.method.lower()]
        if ep.method == "GET":
            documented = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            assert documented == {p.name for p in ep.params}, ep.path
        else:
            media = op["requestBody"]["content"]["application/json"]
            schema = media["schema"]
            assert set(schema["properties"]) == {p.name for p in ep.params}
            assert set(schema["required"]) == {p.name for p in ep.params if p.required}
            # the documented example is a request the server accepts, and the schema agrees
            jsonschema.validate(media["example"], schema)
            assert post(client, ep.path, media["example"]).status_code == 200, ep.path
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate({**media["example"], "nonsense": 1}, schema)
            assert "413" in op["responses"] and "415" in op["responses"]


# -- the Host guard and the default host -----------------------------------------


def test_loopback_server_refuses_foreign_host_headers(bench):
    app = create_app(bench)
    with TestClient(app, base_url="http://evil.example") as c:
        assert "not this machine" in bad(c.get("/healthz"), None)
        assert "not this machine" in bad(c.get("/healthz", headers={"Host": "127.0.0.1.evil.example"}), None)
    for base in ("http://localhost:7861", "http://127.0.0.1:7861", "http://[::1]:7861"):
        with TestClient(app, base_url=base) as c:
            assert c.get("/healthz").status_code == 200, base


def test_server_told_another_host_answers_any_host(bench):
    with TestClient(create_app(bench, host="0.0.0.0"), base_url="http://192.168.1.5:7861") as c:
        assert c.get("/healthz").status_code == 200


def test_cors_is_off_unless_an_origin_is_named(bench):
    with TestClient(create_app(bench), base_url=LOOPBACK) as c:
        r = c.get("/healthz", headers={"Origin": "http://example.org"})
        assert "access-control-allow-origin" not in r.headers
    with TestClient(create_app(bench, cors_origins=["http://ui.local"]), base_url=LOOPBACK) as c:
        r = c.get("/healthz", headers={"Origin": "http://ui.local"})
        assert r.headers["access-control-allow-origin"] == "http://ui.local"
        r = c.get("/healthz", headers={"Origin": "http://example.org"})
        assert "access-control-allow-origin" not in r.headers


def test_serve_binds_loopback_by_default(monkeypatch, capsys):
    uvicorn = pytest.importorskip("uvicorn")
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    seen = {}

    def fake_run(self, sockets=None):
        seen["addr"] = sockets[0].getsockname()
        seen["app"] = self.config.app
        sockets[0].close()

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    assert main(["serve", "--port", "0", "--tags", _csv(monkeypatch)]) == 0
    assert seen["addr"][0] == "127.0.0.1" and seen["addr"][1] > 0
    err = capsys.readouterr().err
    assert "warning" not in err and "http://127.0.0.1:" in err


def test_serve_warns_for_another_host_and_reports_a_busy_port(monkeypatch, capsys):
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        assert main(["serve", "--host", "0.0.0.0", "--port", str(port), "--tags", _csv(monkeypatch)]) == 2
    finally:
        busy.close()
    err = capsys.readouterr().err
    assert "warning: binding 0.0.0.0" in err and "no authentication" in err
    assert f"cannot listen on 0.0.0.0:{port}" in err


def test_serve_reports_a_bad_profile_and_port(monkeypatch, capsys):
    assert main(["serve", "--profile", "nosuch", "--tags", _csv(monkeypatch)]) == 2
    assert "unknown profile 'nosuch'" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be 0-65535" in capsys.readouterr().err


def _csv(monkeypatch) -> str:
    import tempfile

    path = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False)
    path.write("".join(f"{n},{c},{p},\"{a}\"\n" for n, c, p, a in ROWS))
    path.close()
    return path.name


# -- /api/complete ---------------------------------------------------------------


def test_complete_items_carry_what_the_library_ranks(client, bench):
    data = client.get("/api/complete", params={"q": "hats", "limit": 5}).json()
    expected = bench.db.complete("hats", limit=5, profile=bench.default_profile)
    assert [i["tag"] for i in data["items"]] == [s.tag for s in expected]
    first = data["items"][0]
    assert first == {"tag": "hatsune_miku", "insert_text": "hatsune miku", "category": "character",
                     "post_count": 106634, "alias": None, "kind": "prefix", "source": "danbooru"}
    assert data["query"] == "hats" and data["replace_from"] == 0


def test_complete_alias_profile_and_escaping(client):
    alias = client.get("/api/complete", params={"q": "longhair"}).json()["items"][0]
    assert (alias["alias"], alias["tag"], alias["insert_text"]) == ("longhair", "long_hair", "long hair")
    artist = client.get("/api/complete", params={"q": "kanto", "profile": "rouwei"}).json()["items"][0]
    assert artist["insert_text"] == "by kantoku"
    esc = client.get("/api/complete", params={"q": "karin"}).json()["items"][0]
    assert esc["insert_text"] == "karin \\(blue archive\\)"


def test_complete_takes_the_tag_at_the_end_of_the_text(client):
    data = client.get("/api/complete", params={"q": "1girl, (smile:1.1), [hats"}).json()
    assert data["query"] == "hats" and data["replace_from"] == len("1girl, (smile:1.1), [")
    weight = client.get("/api/complete", params={"q": "1girl, (smile:1."}).json()
    assert weight["items"] == [] and weight["query"] == ""
    lora = client.get("/api/complete", params={"q": "1girl, <lora:hat"}).json()
    assert lora["items"] == []
    rouwei = client.get("/api/complete", params={"q": "1girl BREAK by kan", "profile": "rouwei"}).json()
    assert rouwei["query"] == "kan" and rouwei["replace_from"] == len("1girl BREAK ")
    assert rouwei["items"][0]["insert_text"] == "by kantoku"


def test_complete_category_filter(client):
    items = client.get("/api/complete", params={"q": "h", "category": "character"}).json()["items"]
    assert items and {i["category"] for i in items} == {"character"}


@pytest.mark.parametrize(
    "params, field",
    [
        ({}, "q"),
        ({"q": "a", "limit": "0"}, "limit"),
        ({"q": "a", "limit": "101"}, "limit"),
        ({"q": "a", "limit": "ten"}, "limit"),
        ({"q": "a", "profile": "nosuch"}, "profile"),
        ({"q": "a", "backend": "forge"}, "backend"),
        ({"q": "a", "category": "hats"}, "category"),
        ({"q": "a", "qq": "b"}, "qq"),
        ({"q": "x" * 1001}, "q"),
    ],
)
def test_complete_bad_parameters(client, params, field):
    bad(client.get("/api/complete", params=params), field)


# -- /api/tags/{name} --------------------------------------------------------------


def test_tag_lookup(client):
    data = client.get("/api/tags/long_hair").json()
    assert data["name"] == "long_hair" and data["category"] == "general" and data["post_count"] == 4350743
    assert data["aliases"] == ["/lh", "longhair"] and data["alias_of"] is None
    assert client.get("/api/tags/Long Hair").json()["name"] == "long_hair"
    alias = client.get("/api/tags/longhair").json()
    assert alias["name"] == "long_hair" and alias["alias_of"] == "longhair"
    slash = client.get("/api/tags/fate/stay_night").json()
    assert slash["name"] == "fate/stay_night" and slash["insert_text"] == "fate/stay night"
    artist = client.get("/api/tags/kantoku", params={"profile": "rouwei"}).json()
    assert artist["insert_text"] == "by kantoku"
    esc = client.get("/api/tags/karin_(blue_archive)").json()
    assert esc["insert_text"] == "karin \\(blue archive\\)"


def test_tag_lookup_errors(client):
    msg = bad(client.get("/api/tags/hatsnue_miku"), "name", 404)
    assert "hatsune_miku" in msg  # did you mean
    assert "ambiguous" in bad(client.get("/api/tags/thighhigh"), "name", 404)
    bad(client.get("/api/tags/smile", params={"profile": "nosuch"}), "profile")
    bad(client.get("/api/tags/smile", params={"extra": "1"}), "extra")


# -- /api/lint and /api/fix ----------------------------------------------------------


def test_lint_marks_the_unescaped_character_tag(client, bench):
    prompt = "1girl, karin_(blue_archive), smile"
    data = post(client, "/api/lint", {"prompt": prompt, "negative": "worst quality"}).json()
    codes = {d["code"]: d for d in data["diagnostics"]}
    assert "PK202" in codes
    d = codes["PK202"]
    assert d["span"] == [7, 27] and prompt[7:27] == "karin_(blue_archive)"
    assert (d["line"], d["column"], d["field"], d["severity"]) == (1, 8, "positive", "error")
    assert d["fix"]["safe"] is True and d["fix"]["replacement"] == "karin \\(blue archive\\)"
    assert "PK201" not in codes  # one finding for one problem
    direct = pk.lint(prompt, "worst quality", profile="illustrious", db=bench.db)
    assert [x["code"] for x in data["diagnostics"]] == [x.code for x in direct]


def test_lint_checks_the_settings_line(client):
    settings = "Steps: 28, Sampler: Euler a, CFG scale: 50, Seed: 1, Size: 832x1216"
    data = post(client, "/api/lint", {"prompt": "1girl", "settings": settings}).json()
    cfg = [d for d in data["diagnostics"] if d["field"] == "settings"]
    assert cfg and cfg[0]["code"] == "PK701"
    assert settings[cfg[0]["span"][0] : cfg[0]["span"][1]] == "50"


def test_lint_select_and_ignore(client):
    body = {"prompt": "1girl, karin_(blue_archive), (smile"}
    only = post(client, "/api/lint", {**body, "select": ["PK101"]}).json()["diagnostics"]
    assert {d["code"] for d in only} == {"PK101"}
    comma = post(client, "/api/lint", {**body, "select": "PK101,PK202"}).json()["diagnostics"]
    assert {d["code"] for d in comma} == {"PK101", "PK202"}
    none = post(client, "/api/lint", {**body, "ignore": ["PK1", "PK2"]}).json()["diagnostics"]
    assert not {d["code"][:3] for d in none} & {"PK1", "PK2"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "a", "negative": ["x"]}, "negative"),
        ({"prompt": "a", "profile": "nosuch"}, "profile"),
        ({"prompt": "a", "backend": "forge"}, "backend"),
        ({"prompt": "a", "select": ["PK999"]}, "select"),
        ({"prompt": "a", "select": 3}, "select"),
        ({"prompt": "a", "select": ["PK1"], "ignore": ["no-such-rule"]}, "ignore"),
        ({"prompt": "a", "negative_prompt": "x"}, "negative_prompt"),
        ({"prompt": "a", "settings": 12}, "settings"),
    ],
)
def test_lint_bad_fields(client, body, field):
    bad(post(client, "/api/lint", body), field)


def test_fix_all_matches_the_library(client, bench):
    prompt = "1girl, karin_(blue_archive), smile, smile"
    data = post(client, "/api/fix", {"prompt": prompt}).json()
    expected = pk.fix(prompt, profile="illustrious", db=bench.db)
    assert data["prompt"] == expected.text == "1girl, karin \\(blue archive\\), smile"
    assert data["changed"] is True
    assert [d["code"] for d in data["applied"]] == [d.code for d in expected.applied]


def test_fix_at_a_span_fixes_that_problem_only(client):
    prompt = "karin_(blue_archive), 1girl, smile, smile"
    data = post(client, "/api/fix", {"prompt": prompt, "field": "positive", "span": [0, 20]}).json()
    assert data["prompt"] == "karin \\(blue archive\\), 1girl, smile, smile"  # the duplicate stays
    assert {d["code"] for d in data["applied"]} == {"PK202"}  # its fix also turns "_" into spaces
    assert "PK501" in {d["code"] for d in data["remaining"]}
    neg = post(client, "/api/fix", {"prompt": "1girl", "negative": "smile, smile", "field": "negative",
                                    "span": [7, 12]}).json()
    assert neg["negative"] == "smile" and neg["prompt"] == "1girl"
    unsafe = {"prompt": "1girl, (smile", "field": "positive", "span": [7, 8]}
    assert post(client, "/api/fix", unsafe).json()["changed"] is False
    assert post(client, "/api/fix", {**unsafe, "unsafe": True}).json()["prompt"] == "1girl, (smile)"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"prompt": "a", "span": [0, 1]}, "field"),
        ({"prompt": "a", "field": "positive"}, "span"),
        ({"prompt": "a", "field": "positive", "span": [0, 9]}, "span"),
        ({"prompt": "a", "field": "positive", "span": [2, 1]}, "span"),
        ({"prompt": "a", "field": "positive", "span": [0]}, "span"),
        ({"prompt": "a", "field": "negative", "span": [0, 1]}, "field"),
        ({"prompt": "a", "field": "settings", "span": [0, 1]}, "field"),
        ({"prompt": "a", "unsafe": "yes"}, "unsafe"),
        ({"prompt": "a", "ignore": ["PK9999"]}, "ignore"),
    ],
)
def test_fix_bad_fields(client, body, field):
    bad(post(client, "/api/fix", body), field)


# -- /api/chunks ---------------------------------------------------------------------


def test_chunks_report_what_a1111_encodes(client):
    prompt = "masterpiece, best quality, 1girl, karin \\(blue archive\\), (smile:1.2) BREAK by kantoku"
    data = post(client, "/api/chunks", {"prompt": prompt}).json()
    cl = pk.chunks(prompt)
    assert data["token_count"] == cl.token_count and data["target"] == cl.target_token_count
    assert data["counter"] == f"{cl.token_count} / {cl.target_token_count}"
    assert [c["tokens"] for c in data["chunks"]] == [c.n_content for c in cl]
    assert data["chunks"][0]["closed_by"] == "break"
    brk = data["chunks"][0]["break_span"]
    assert prompt[brk[0] : brk[1]] == "BREAK" and data["breaks"] == [brk]
    second = data["chunks"][1]["span"]
    assert prompt[second[0] : second[1]] == "by kantoku"


def test_chunks_back_tracking_moves_the_last_tag(client):
    # 72 tokens up to the last comma, then a 5-token tag that does not fit: A1111 moves
    # the 3 tokens of it that were in chunk 1 over to chunk 2, so the tag stays whole
    prompt = ", ".join(["smile"] * 36) + ", very long hair ornament thing"
    cl = pk.chunks(prompt)
    assert cl[0].closed_by == "backtrack"
    data = post(client, "/api/chunks", {"prompt": prompt}).json()
    first = data["chunks"][0]
    assert first["closed_by"] == "backtrack" and first["moved_tokens"] == cl[0].moved
    moved = first["moved_span"]
    assert prompt[moved[0] : moved[1]] == "very long hair" and first["moved_tokens"] == 3
    assert data["chunks"][1]["span"][0] == moved[0] == cl[1].spans[1].start
    off = post(client, "/api/chunks", {"prompt": prompt, "comma_backtrack": 0}).json()
    assert off["chunks"][0]["closed_by"] == "full" and off["chunks"][0]["cut_tag"] is True


def test_chunks_of_a_long_prompt_start_where_the_library_says(client):
    prompt = ", ".join(f"tag{i} word" for i in range(100))
    cl = pk.chunks(prompt)
    data = post(client, "/api/chunks", {"prompt": prompt}).json()
    assert len(data["chunks"]) == len(cl) > 2
    for entry, c in zip(data["chunks"], cl):
        assert entry["span"][0] == c.spans[1].start
        assert entry["span"][1] == c.spans[c.n_content].end


@pytest.mark.parametrize(
    "body, field",
    [({}, "prompt"), ({"prompt": None}, "prompt"), ({"prompt": "a", "comma_backtrack": 75}, "comma_backtrack"),
     ({"prompt": "a", "comma_backtrack": True}, "comma_backtrack"), ({"prompt": "a", "encoder": "x"}, "encoder")],
)
def test_chunks_bad_fields(client, body, field):
    bad(post(client, "/api/chunks", body), field)


# -- /api/normalize ------------------------------------------------------------------


def apply_changes(before: str, changes: list[dict]) -> str:
    out, pos = [], 0
    for c in changes:
        assert before[c["before"][0] : c["before"][1]] == c["old"]
        out.append(before[pos : c["before"][0]])
        out.append(c["new"])
        pos = c["before"][1]
    return "".join(out) + before[pos:]


def test_normalize_previews_the_library_result(client, bench):
    prompt = "karin_(blue_archive), kantoku, 1girl, 1girls"
    data = post(client, "/api/normalize", {"prompt": prompt, "negative": "worst quality", "profile": "rouwei"}).json()
    expected = pk.normalize(prompt, db=bench.db, profile="rouwei")
    part = data["prompt"]
    assert part["before"] == prompt and part["after"] == expected and part["changed"] is True
    assert apply_changes(prompt, part["changes"]) == expected
    assert data["negative"]["changed"] is False and data["negative"]["changes"] == []
    assert data["profile"] == "rouwei"


@pytest.mark.parametrize(
    "body, field",
    [({}, "prompt"), ({"prompt": "a", "profile": "x"}, "profile"), ({"prompt": "a", "isolate_artists": 1}, "isolate_artists")],
)
def test_normalize_bad_fields(client, body, field):
    bad(post(client, "/api/normalize", body), field)


@given(st.text(alphabet="ab ,_()\\[]:", max_size=30), st.text(alphabet="ab ,_()\\[]:", max_size=30))
def test_text_changes_turn_before_into_after(a, b):
    assert apply_changes(a, text_changes(a, b)) == b


# -- /api/infotext ----------------------------------------------------------------------

INFOTEXT = (
    "masterpiece, 1girl, karin_(blue_archive)\nsmile\n"
    "Negative prompt: worst quality, low quality\n"
    "Steps: 28, Sampler: Euler a, CFG scale: 50, Seed: 1, Size: 832x1216, Model: rouwei"
)


def test_infotext_is_split_and_linted(client):
    data = post(client, "/api/infotext", {"text": INFOTEXT}).json()
    assert data["prompt"] == "masterpiece, 1girl, karin_(blue_archive)\nsmile"
    assert data["negative"] == "worst quality, low quality"
    assert data["settings"].startswith("Steps: 28") and data["values"]["CFG scale"] == "50"
    fields = {d["field"] for d in data["diagnostics"]}
    assert {"positive", "settings"} <= fields
    assert data["offsets"]["negative"] == INFOTEXT.index("worst quality")


def test_infotext_without_negative_or_settings(client):
    data = post(client, "/api/infotext", {"text": "1girl, smile"}).json()
    assert (data["prompt"], data["negative"], data["settings"], data["values"]) == ("1girl, smile", None, None, {})


@pytest.mark.parametrize("body, field", [({}, "text"), ({"text": 1}, "text"), ({"text": "a", "profile": "x"}, "profile")])
def test_infotext_bad_fields(client, body, field):
    bad(post(client, "/api/infotext", body), field)


# -- bodies: JSON, content type, size cap ------------------------------------------------


@pytest.mark.parametrize("path", [ep.path for ep in ENDPOINTS if ep.method == "POST"])
def test_post_bodies_must_be_json_objects(client, path):
    assert "invalid JSON at line 1, column" in bad(
        client.post(path, content=b'{"prompt": ', headers={"Content-Type": "application/json"}), None)
    assert "JSON object" in bad(post(client, path, ["prompt"]), None)
    assert "empty" in bad(client.post(path, content=b"", headers={"Content-Type": "application/json"}), None)
    assert "not UTF-8" in bad(client.post(path, content=b'{"prompt": "\xff"}',
                                          headers={"Content-Type": "application/json"}), None)
    assert "Content-Type" in bad(client.post(path, content=b"{}", headers={"Content-Type": "text/plain"}), None, 415)


def test_body_size_cap(client):
    big = json.dumps({"prompt": "a" * (64 * 1024)}).encode()
    assert "limit is 65536" in bad(client.post("/api/lint", content=big, headers={"Content-Type": "application/json"}),
                                   None, 413)

    def chunked():  # no Content-Length: counted as it arrives
        yield b'{"prompt": "'
        for _ in range(70):
            yield b"a" * 1024
        yield b'"}'

    assert "over the limit" in bad(client.post("/api/chunks", content=chunked(),
                                               headers={"Content-Type": "application/json"}), None, 413)
    ok = json.dumps({"prompt": "a" * 30000}).encode()
    assert client.post("/api/chunks", content=ok, headers={"Content-Type": "application/json"}).status_code == 200


def test_small_cap_is_configurable(bench):
    with TestClient(create_app(bench, max_body=100), base_url=LOOPBACK) as c:
        assert post(c, "/api/chunks", {"prompt": "a" * 200}).status_code == 413
        assert post(c, "/api/chunks", {"prompt": "a"}).status_code == 200


# -- no file reads on request; arbitrary text never crashes ----------------------------------


def test_requests_read_no_files(bench, monkeypatch):
    import builtins
    import io
    import os
    import pathlib

    app = create_app(bench)
    bench.warm()
    with TestClient(app, base_url=LOOPBACK) as c:
        def no_files(*a, **k):
            raise AssertionError(f"a request opened a file: {a!r}")

        monkeypatch.setattr(builtins, "open", no_files)
        monkeypatch.setattr(io, "open", no_files)
        monkeypatch.setattr(os, "open", no_files)
        monkeypatch.setattr(pathlib.Path, "read_bytes", no_files)
        monkeypatch.setattr(pathlib.Path, "read_text", no_files)
        for profile in sorted(bench.profiles):
            assert c.get("/api/complete", params={"q": "ha", "profile": profile}).status_code == 200
            body = {"prompt": "1girl, karin_(blue_archive), (smile", "negative": "worst quality", "profile": profile,
                    "settings": "Steps: 28, Sampler: Euler a, CFG scale: 5, Seed: 1, Size: 832x1216"}
            assert post(c, "/api/lint", body).status_code == 200
            assert post(c, "/api/fix", body).status_code == 200
            body.pop("settings")
            assert post(c, "/api/normalize", body).status_code == 200
        assert post(c, "/api/chunks", {"prompt": "a, b BREAK c"}).status_code == 200
        assert post(c, "/api/infotext", {"text": INFOTEXT}).status_code == 200
        assert c.get("/api/tags/long_hair").status_code == 200
        assert c.get("/api/tags/hatsnue").status_code == 404
        assert c.get("/api/profiles").status_code == 200
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200
        assert c.get("/openapi.json").status_code == 200


PROMPTISH = st.lists(st.sampled_from(list("ab ,_()[]{}:|\\<>.0123456789\n") + ["BREAK", " AND ", "é", "\u3000",
                                                                                    "lora:", "1.2"]),
                     max_size=40).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=PROMPTISH)
def test_any_text_gets_an_answer_not_a_crash(client, text):
    for path, body in (("/api/lint", {"prompt": text, "negative": text}), ("/api/chunks", {"prompt": text}),
                       ("/api/fix", {"prompt": text}), ("/api/normalize", {"prompt": text}),
                       ("/api/infotext", {"text": text})):
        r = post(client, path, body)
        assert r.status_code == 200, (path, text, r.text)
    r = client.get("/api/complete", params={"q": text})
    assert r.status_code == 200, (text, r.text)


@given(text=PROMPTISH, cursor=st.integers(0, 90))
def test_tag_at_returns_a_suffix_of_the_text_before_the_cursor(text, cursor):
    at = tag_at(text, cursor)
    end = min(cursor, len(text))
    assert 0 <= at.start <= end
    assert text[at.start : end].endswith(at.query)
    assert "," not in at.query and "\n" not in at.query


# -- layering ------------------------------------------------------------------------------


def test_server_imports_only_lint_tags_clip_and_below():
    import ast
    from pathlib import Path

    allowed = ("promptkit.lint", "promptkit.tags", "promptkit.clip", "promptkit.profiles", "promptkit.diagnostics")
    folder = Path(__file__).resolve().parent.parent / "promptkit" / "server"
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
                if node.module.startswith("promptkit."):
                    assert not any(a.name.startswith("_") for a in node.names), (path.name, node.module)
            for name in names:
                if name == "promptkit" or not name.startswith("promptkit"):
                    assert name.split(".")[0] not in ("torch", "transformers", "diffusers", "ray"), (path.name, name)
                    continue
                assert name.startswith(allowed), f"{path.name} imports {name}"


def test_serving_requests_never_loads_torch_or_sdxl():
    import subprocess
    import sys

    code = (
        "import sys, json\n"
        "from starlette.testclient import TestClient\n"
        "from promptkit.server import Workbench, create_app\n"
        "from promptkit.tags import TagDB\n"
        "c = TestClient(create_app(Workbench(TagDB.from_rows([('smile', 0, 9, '')]))), base_url='http://127.0.0.1')\n"
        "for p in ('/api/lint', '/api/chunks', '/api/fix', '/api/normalize'):\n"
        "    assert c.post(p, json={'prompt': 'smile, (smile'}).status_code == 200\n"
        "assert c.get('/api/complete', params={'q': 'sm'}).status_code == 200\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'diffusers')"
        " or m.startswith('promptkit.sdxl'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_cursor_doctests():
    import doctest

    import promptkit.tags.cursor as cursor

    result = doctest.testmod(cursor)
    assert result.attempted >= 3 and result.failed == 0
