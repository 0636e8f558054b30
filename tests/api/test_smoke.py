def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_superadmin_lists_both_tenants(api):
    r = api("superadmin").get("/api/v1/tenants")
    assert r.status_code == 200
    assert [t["slug"] for t in r.json()["items"]] == ["acme", "globex"]


def test_member_lists_only_own_tenant(api):
    r = api("acme_member").get("/api/v1/tenants")
    assert [t["slug"] for t in r.json()["items"]] == ["acme"]
