"""Researcher pages: export form and preview, agreement chart data, snapshot card; escaping."""

from __future__ import annotations

import json
import re

from tests.exports.helpers import candidates, judge
from tests.factories import auth, make_tasks, make_user


def _data() -> None:
    make_user("alice")
    make_user("bob")
    for tid in make_tasks(2, k=2, required=2):
        a, b = candidates(tid)
        judge(tid, "alice", [[a], [b]], "a")
        judge(tid, "bob", [[b], [a]] if tid % 2 else [[a], [b]], "b" if tid % 2 else "a")


def test_research_pages_need_researcher(client) -> None:  # type: ignore[no-untyped-def]
    lab = auth(make_user("lara"))
    for path in ("/research", "/research/agreement", "/research/exports/1"):
        assert client.get(path, headers=lab).status_code == 403
        anon = client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
        assert anon.status_code == 303 and anon.headers["location"].startswith("/login")


def test_export_form_and_preview(client) -> None:  # type: ignore[no-untyped-def]
    _data()
    r = auth(make_user("rita", "researcher"))
    page = client.get("/research", headers=r)
    assert page.status_code == 200
    assert 'action="/api/v1/exports/preferences"' in page.text and 'id="preview"' not in page.text
    # the form's own empty fields must be accepted ("" means no filter)
    params = "preview=1&shape=trl&format=jsonl&since=&until=&tag=&min_agreement=&labeler=alice"
    prev = client.get(f"/research?{params}", headers=r)
    assert prev.status_code == 200
    assert re.search(r'data-shape="raw">2<', prev.text)
    assert re.search(r'data-shape="rankings">2<', prev.text)
    bad = client.get("/research?preview=1&labeler=ghost", headers=r)
    assert bad.status_code == 422 and "unknown labeler" in bad.text
    download = client.get(
        f"/api/v1/exports/preferences?{params.replace('preview=1&', '')}", headers=r
    )
    assert download.status_code == 200 and len(download.text.splitlines()) == 2
    listed = client.get("/research", headers=r)
    sid = download.headers["x-dataset-snapshot"]
    assert f'href="/research/exports/{sid}"' in listed.text
    card = client.get(f"/research/exports/{sid}", headers=r)
    assert card.status_code == 200 and "Krippendorff" in card.text
    assert client.get("/research/exports/999", headers=r).status_code == 404


def test_agreement_page_embeds_chart_data_escaped(client) -> None:  # type: ignore[no-untyped-def]
    _data()
    admin = auth(make_user("root", "admin"))
    evil = "<script>alert(1)</script>"
    row = {"prompt": "q", "chosen": "a", "rejected": "b"}
    assert (
        client.post(
            "/api/v1/import/preferences",
            params={"source": evil},
            content=json.dumps(row),
            headers=admin,
        ).status_code
        == 201
    )
    page = client.get("/research/agreement", headers=admin)
    assert page.status_code == 200
    assert '<svg id="agreement-chart"' in page.text and "/static/exports.js" in page.text
    assert evil not in page.text
    blob = re.search(r'id="agreement-data">(.*?)</script>', page.text, re.S)
    assert blob is not None
    data = json.loads(blob.group(1))
    assert data["units"] == 2 and data["percent"] == 0.5 and len(data["labelers"]) == 3
