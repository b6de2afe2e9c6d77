"""Source administration: settings, disabling, key rotation, validation."""

import httpx

from tests.conftest import ADMIN, Servers
from tests.helpers import create_source, every_page, opened_events_of, post_lead, refused_fields


async def test_offline_channels_default_to_offline(ingest: httpx.AsyncClient) -> None:
    assert (await create_source(ingest, channel="event"))["online"] is False
    assert (await create_source(ingest, channel="landing_page"))["online"] is True


async def test_disabled_and_unknown_keys_get_the_same_answer(ingest: httpx.AsyncClient) -> None:
    source = await create_source(ingest)
    assert (await post_lead(ingest, source["key"], email="a@example.kz")).status_code == 202
    patched = await ingest.patch(f"/v1/sources/{source['id']}", json={"active": False}, headers=ADMIN)
    assert patched.status_code == 200 and patched.json()["active"] is False
    disabled = await post_lead(ingest, source["key"], email="a@example.kz")
    unknown = await post_lead(ingest, "lfk_" + "x" * 43, email="a@example.kz")
    assert disabled.status_code == unknown.status_code == 401
    assert disabled.json() == unknown.json()


async def test_rotating_the_key_retires_the_old_one_at_once(ingest: httpx.AsyncClient) -> None:
    source = await create_source(ingest)
    assert (await post_lead(ingest, source["key"], email="r@example.kz")).status_code == 202
    rotated = await ingest.post(f"/v1/sources/{source['id']}/rotate-key", headers=ADMIN)
    assert rotated.status_code == 200
    new_key = rotated.json()["key"]
    assert new_key != source["key"] and rotated.json()["key_prefix"] == new_key[:10]
    assert (await post_lead(ingest, source["key"], email="r@example.kz")).status_code == 401
    assert (await post_lead(ingest, new_key, email="r@example.kz")).status_code == 202


async def test_settings_can_change_and_are_validated(ingest: httpx.AsyncClient) -> None:
    source = await create_source(ingest)
    url = f"/v1/sources/{source['id']}"
    changed = await ingest.patch(
        url,
        json={
            "required_fields": ["company"],
            "default_campaign": "expo-2026",
            "redirect_url": "https://shop.az/thanks",
        },
        headers=ADMIN,
    )
    assert changed.status_code == 200, changed.text
    assert (await ingest.get(url, headers=ADMIN)).json()["default_campaign"] == "expo-2026"
    refused = await post_lead(ingest, source["key"], email="c@example.az")
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "company"
    bad = await ingest.patch(url, json={"required_fields": ["shoe_size"]}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "required_fields"
    assert (await ingest.patch(url, json={"name": None}, headers=ADMIN)).status_code == 422
    unknown_channel = await ingest.post("/v1/sources", json={"name": "X", "channel": "pigeon"}, headers=ADMIN)
    assert unknown_channel.status_code == 422 and unknown_channel.json()["errors"][0]["field"] == "channel"


async def test_default_campaign_applies_when_the_lead_names_none(ingest: httpx.AsyncClient) -> None:
    source = await create_source(ingest, channel="event", default_campaign="expo-2026")
    lead_id = (await post_lead(ingest, source["key"], email="expo@example.kz")).json()["lead_id"]
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["attributes"]["campaign"] == "expo-2026"


async def test_unknown_source_is_404(ingest: httpx.AsyncClient) -> None:
    missing = "/v1/sources/00000000-0000-0000-0000-000000000000"
    assert (await ingest.get(missing, headers=ADMIN)).status_code == 404
    assert (await ingest.patch(missing, json={"active": False}, headers=ADMIN)).status_code == 404


async def test_a_source_states_its_legal_basis_for_marketing_and_its_leads_carry_it(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    basis = "legitimate interest: customers of our shop"
    source = await create_source(ingest, channel="store_visit", marketing_basis=basis)
    assert source["marketing_basis"] == basis
    lead_id = (await post_lead(ingest, source["key"], email="shop@example.kz")).json()["lead_id"]
    [captured] = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 1)
    assert captured.data["marketing_basis"] == basis
    plain = await create_source(ingest)
    assert plain["marketing_basis"] is None, "unset by default: marketing needs consent"
    other = (await post_lead(ingest, plain["key"], email="plain@example.kz")).json()["lead_id"]
    [captured] = await opened_events_of(ingest, servers.bootstrap, other, lambda es: len(es) >= 1)
    assert captured.data.get("marketing_basis") is None
    cleared = await ingest.patch(f"/v1/sources/{source['id']}", json={"marketing_basis": None}, headers=ADMIN)
    assert cleared.status_code == 200 and cleared.json()["marketing_basis"] is None


async def test_sources_come_a_page_at_a_time_each_once_oldest_first(ingest: httpx.AsyncClient) -> None:
    mine = [(await create_source(ingest))["id"] for _ in range(4)]
    whole = (await ingest.get("/v1/sources", headers=ADMIN)).json()
    seen, pages = await every_page(ingest, "/v1/sources", limit=3)
    assert [s["id"] for s in seen] == [s["id"] for s in whole], "the pages, end to end, are the list"
    assert len({s["id"] for s in seen}) == len(seen)
    assert [s["id"] for s in seen if s["id"] in mine] == mine
    assert pages == -(-len(seen) // 3), "a next link only while more follow"
    refused = await ingest.get("/v1/sources", params={"cursor": "W10="}, headers=ADMIN)  # []
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "cursor"


async def test_a_pages_address_in_allowed_origins_is_kept_as_its_origin(ingest: httpx.AsyncClient) -> None:
    """Marketers copy the form's page from the browser's bar: `https://shop.kz/contact` was
    kept whole, matched no browser's `Origin` (scheme://host[:port], nothing after) and the form
    refused every visitor with a 403 nobody saw."""
    copied = [
        "https://shop.kz/contact",
        "HTTPS://Shop.KZ:443/?utm_source=instagram#form",
        "http://localhost:3000/landing/",
        "https://promo.shop.kz:8443/a/b",
        "http://[::1]:8080/x",
        "https://магазин.kz/контакты",
        "https://shop.kz",  # the same origin as the first: kept once
    ]
    source = await create_source(ingest, channel="landing_page", allowed_origins=copied)
    origins = [
        "https://shop.kz",
        "http://localhost:3000",
        "https://promo.shop.kz:8443",
        "http://[::1]:8080",
        "https://xn--80aairftm.kz",  # as a browser sends an international name
    ]
    assert source["allowed_origins"] == origins
    url = f"/v1/sources/{source['id']}"
    assert (await ingest.get(url, headers=ADMIN)).json()["allowed_origins"] == origins
    patched = await ingest.patch(
        url, json={"allowed_origins": ["https://Baku.shop.az/kontakt?x=1"]}, headers=ADMIN
    )
    assert patched.status_code == 200 and patched.json()["allowed_origins"] == ["https://baku.shop.az"]


async def test_an_allowed_origin_that_is_no_web_address_is_refused_naming_it(
    ingest: httpx.AsyncClient,
) -> None:
    for entry in ("shop.kz", "www.shop.kz/contact", "ftp://shop.kz", "https://", "https://*.shop.kz", "null"):
        body = {"name": "Promo", "channel": "landing_page", "allowed_origins": ["https://ok.kz", entry]}
        created = await ingest.post("/v1/sources", json=body, headers=ADMIN)
        assert refused_fields(created) == ["allowed_origins.1"], entry
        reason = created.json()["errors"][0]["reason"]
        assert reason.startswith(f"{entry!r} is not a web address") and "https://shop.kz" in reason
    source = await create_source(ingest, channel="landing_page", allowed_origins=["https://ok.kz"])
    url = f"/v1/sources/{source['id']}"
    patched = await ingest.patch(url, json={"allowed_origins": ["ok.kz"]}, headers=ADMIN)
    assert refused_fields(patched) == ["allowed_origins.0"]
    assert (await ingest.get(url, headers=ADMIN)).json()["allowed_origins"] == ["https://ok.kz"]
