"""`promptkit tags download` against a local HTTP server on 127.0.0.1 (loopback only)."""

from __future__ import annotations

import http.server
import threading

import pytest
from conftest import DANBOORU_CSV, E621_CSV, needs_tags

from promptkit.cli import main
from promptkit.tags import TagDB, downloaded_path
from promptkit.tags.download import DownloadError, download_tags, validate_csv

SYNTH = "".join(f"tag_{i},{(0, 1, 3, 4, 5)[i % 5]},{100000 - i},\n" for i in range(3000)).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802 - http.server API
        kind, body = self.routes.get(self.path, ("missing", b""))
        if kind == "ok":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif kind == "truncated":  # announces the whole file, sends 60 %
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) * 6 // 10])
            self.wfile.flush()
            self.close_connection = True
        elif kind == "cut-row":  # no Content-Length, ends inside a row
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body[: body.index(b"tag_1500") + 5])
            self.close_connection = True
        elif kind == "500":
            self.send_error(500, "Internal Server Error")
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PROMPTKIT_TAGS", raising=False)
    monkeypatch.setenv("PROMPTKIT_CONFIG", str(tmp_path / "none.toml"))
    Handler.routes = {
        "/synth.csv": ("ok", SYNTH),
        "/truncated.csv": ("truncated", SYNTH),
        "/cut.csv": ("cut-row", SYNTH),
        "/error.csv": ("500", b""),
        "/page.html": ("ok", b"<html><body>rate limited</body></html>" * 100),
        "/tiny.csv": ("ok", b"1girl,0,5,\n"),
        "/bad.csv": ("ok", b"".join(b"tag_%d,zero,1,\n" % i for i in range(2000))),
    }
    if DANBOORU_CSV.is_file():
        Handler.routes["/danbooru.csv"] = ("ok", DANBOORU_CSV.read_bytes())
    if E621_CSV.is_file():
        Handler.routes["/e621.csv"] = ("ok", E621_CSV.read_bytes())
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_installs_and_is_used(server):
    res = download_tags("danbooru", server + "/synth.csv", progress=False)
    assert res.rows == 3000 and res.path == downloaded_path("danbooru")
    assert res.path.read_bytes() == SYNTH
    db = TagDB.load()
    assert db.source_info.origin == "downloaded" and db.get("tag 8").category == "character"


@pytest.mark.parametrize(
    "route, message",
    [
        ("/truncated.csv", "truncated"),
        ("/cut.csv", "incomplete"),
        ("/error.csv", "HTTP 500"),
        ("/page.html", "HTML"),
        ("/tiny.csv", "only 1 valid rows"),
        ("/bad.csv", "malformed rows, first at line 1"),
        ("/missing.csv", "HTTP 404"),
    ],
)
def test_failed_download_keeps_previous_file(server, route, message):
    download_tags("danbooru", server + "/synth.csv", progress=False)
    before = downloaded_path("danbooru").read_bytes()
    with pytest.raises(DownloadError, match=message):
        download_tags("danbooru", server + route, progress=False)
    assert downloaded_path("danbooru").read_bytes() == before
    leftovers = [p.name for p in downloaded_path("danbooru").parent.iterdir() if p.name.endswith(".part")]
    assert leftovers == []


def test_cli_download_and_info(server, capsys):
    assert main(["tags", "download", "--url", server + "/error.csv", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "HTTP 500" in err and "previous list kept" in err
    assert main(["tags", "download", "--url", server + "/synth.csv", "--no-progress"]) == 0
    assert "saved 3000 tags" in capsys.readouterr().out
    assert main(["tags", "info"]) == 0
    out = capsys.readouterr().out
    assert "downloaded list" in out and "3000 tags" in out and "/synth.csv" in out


def test_unknown_source_and_scheme():
    with pytest.raises(DownloadError, match="unknown source"):
        download_tags("gelbooru")
    with pytest.raises(DownloadError, match="unsupported URL"):
        download_tags("danbooru", "ftp://example.invalid/x.csv")


def test_validate_drops_a_rare_malformed_row():
    data = SYNTH + b",0,5,\n"
    clean, rows, dropped, problems = validate_csv(data, "x.csv", "e621")
    assert rows == 3000 and dropped == 1 and problems == [(3001, "empty tag name")]
    assert clean == SYNTH


@needs_tags
def test_download_full_danbooru_list(server):
    res = download_tags("danbooru", server + "/danbooru.csv", progress=False)
    assert res.rows == 140782 and res.dropped_rows == 0
    assert res.path.read_bytes() == DANBOORU_CSV.read_bytes()
    assert len(TagDB.load()) == 140782


@needs_tags
def test_download_e621_drops_its_nameless_row_and_loads_strict(server, capsys):
    res = download_tags("e621", server + "/e621.csv", progress=False)
    assert res.rows == 101667 and res.dropped_rows == 1
    assert "5473: empty tag name (row dropped)" in capsys.readouterr().err
    download_tags("danbooru", server + "/danbooru.csv", progress=False)
    db = TagDB.load()  # both downloaded lists, strict
    assert db.sources == ("danbooru", "e621") and db.source_info.origin == "downloaded"
    assert db.get("hi_res").source == "e621"


# -- local mirrors and header rows ----------------------------------------------------------

HEADER = b"name,category,count,alias\n"


def test_download_from_a_local_mirror_with_file_url(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROMPTKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PROMPTKIT_TAGS", raising=False)
    monkeypatch.setenv("PROMPTKIT_CONFIG", str(tmp_path / "none.toml"))
    mirror = tmp_path / "mirror" / "danbooru.csv"
    mirror.parent.mkdir()
    mirror.write_bytes(HEADER + SYNTH)  # a mirror exported with a header row
    assert main(["tags", "download", "--no-progress", "--url", mirror.as_uri()]) == 0
    assert "saved 3000 tags" in capsys.readouterr().out
    db = TagDB.load()
    assert db.source_info.origin == "downloaded" and len(db) == 3000 and db.get("tag_0").post_count == 100000
    # a missing file is an error naming it; the list already downloaded is kept
    code = main(["tags", "download", "--no-progress", "--url", (tmp_path / "nope.csv").as_uri()])
    err = capsys.readouterr().err
    assert code == 2 and "nope.csv" in err and "previous list kept" in err
    assert len(TagDB.load()) == 3000


def test_a_plain_path_gets_the_file_url_to_write(tmp_path):
    with pytest.raises(DownloadError, match=r"file:///"):
        download_tags(url=str(tmp_path / "danbooru.csv"), dest=tmp_path / "out.csv")


@pytest.mark.parametrize("header", [HEADER, b"Name,Category,Post_Count,Aliases\r\n", b'"tag","type","count"\n'])
def test_a_header_row_is_recognised(header, tmp_path):
    f = tmp_path / "tags.csv"
    f.write_bytes(header + b'long_hair,0,100,"longhair,/lh"\nsmile,0,50,\n')
    db = TagDB.load(f)
    assert len(db) == 2 and db.get("name") is None and db.resolve("longhair").name == "long_hair"
    # a malformed row after the header is still named by its line in the file
    f.write_bytes(header + b"long_hair,0,100,\nsmile,zero,50,\n")
    with pytest.raises(Exception, match=r"tags\.csv:3"):
        TagDB.load(f)


def test_a_tag_named_like_a_column_is_only_skipped_in_the_first_row(tmp_path):
    f = tmp_path / "tags.csv"
    f.write_bytes(b"smile,0,50,\nname,0,10,\n")  # no header: "name" is a tag (data row with numbers)
    assert len(TagDB.load(f)) == 2
