"""Each request reads its own language: staff pages follow the browser (Accept-Language) or a
chosen language, participant pages the participant's choice; two requests at once never mix."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.web.app import create_app

BASE = "http://127.0.0.1:8000"
MARIA = "maria.lopez@harbor-lead.example"  # case manager


def test_a_staff_page_reads_in_the_browsers_language(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    maria = as_user(MARIA)
    english = maria.get("/staff")
    assert english.status_code == 200
    assert "<h1>Caseload</h1>" in english.text and '<html lang="en">' in english.text
    spanish = maria.get("/staff", headers={"accept-language": "es-US,es;q=0.9,en;q=0.5"})
    assert "<h1>Casos a cargo</h1>" in spanish.text and '<html lang="es">' in spanish.text
    assert "Buscar un participante" in spanish.text and "Find a participant" not in spanish.text
    # The staff navigation and the frame are translated too.
    assert '<a href="/staff">Casos a cargo</a>' in spanish.text
    assert "Cada acceso queda registrado." in spanish.text
    # A chosen language wins over the browser's.
    assert "<h1>Caseload</h1>" in maria.get(
        "/staff?lang=en", headers={"accept-language": "es"}).text


def test_staff_plurals_follow_the_count(as_user: Callable[[str], TestClient[Any]]) -> None:
    caseload = as_user(MARIA).get("/staff?urgent=1", headers={"accept-language": "es"}).text
    counts = re.findall(r"<strong>(\d+) (urgentes?)</strong>", caseload)
    assert counts
    assert all(word == ("urgente" if n == "1" else "urgentes") for n, word in counts)


def test_a_participant_page_reads_in_the_chosen_language(
        app_settings: Settings, demo: sessionmaker[Session]) -> None:
    with TestClient(create_app(app_settings), base_url=BASE) as client:
        spanish = client.get("/me/login?lang=es")
        assert "<h1>Entrar</h1>" in spanish.text and '<html lang="es">' in spanish.text
        assert "Saltar al contenido principal" in spanish.text
        # The choice is remembered in a cookie, as before.
        assert "<h1>Entrar</h1>" in client.get("/me/login").text
        assert "<h1>Sign in</h1>" in client.get("/me/login?lang=en").text
    with TestClient(create_app(app_settings), base_url=BASE) as client:
        # Participants' pages do not follow the browser: they choose (unchanged behaviour).
        assert "<h1>Sign in</h1>" in client.get(
            "/me/login", headers={"accept-language": "es"}).text
        missing = client.get("/me/nothing-here?lang=es")
        assert missing.status_code == 404 and "No encontramos esa página" in missing.text


def test_the_start_page_in_spanish(app_settings: Settings, demo: sessionmaker[Session]) -> None:
    with TestClient(create_app(app_settings), base_url=BASE) as client:
        english = client.get("/").text
        assert "Sharing what helps" in english
        assert '<p lang="es">Usted decide quién puede ver su información.' in english
        spanish = client.get("/", headers={"accept-language": "es"}).text
        assert "Compartir lo que ayuda" in spanish and "Sharing what helps" not in spanish
        assert '<p lang="es">' not in spanish  # the Spanish line is the page itself now
        assert "<h1>No se encontró</h1>" in client.get(
            "/no-such-page", headers={"accept-language": "es"}).text


def test_concurrent_requests_keep_their_own_language(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    maria = as_user(MARIA)

    def heading(lang: str) -> str:
        page = maria.get("/staff", headers={"accept-language": lang}).text
        return page.split("<h1>", 1)[1].split("</h1>", 1)[0]

    with ThreadPoolExecutor(max_workers=4) as pool:
        headings = list(pool.map(heading, ["es", "en"] * 6))
    assert headings == ["Casos a cargo", "Caseload"] * 6


def test_words_defined_in_python_are_translated_where_shown(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    maria = as_user(MARIA)
    spanish = {"accept-language": "es"}
    exit_page = maria.get("/participants/LP-1001/exit", headers=spanish).text
    assert "<h1>Registrar la salida de LEAD: LP-1001</h1>" in exit_page
    assert "A partir de esta fecha" in exit_page and ">Terminó el programa</option>" in exit_page
    record = maria.get("/participants/LP-1001", headers=spanish).text
    assert ">Datos de contacto</h2>" in record and ">Contact details</h2>" not in record
    assert ">Contact details</h2>" in maria.get("/participants/LP-1001").text
