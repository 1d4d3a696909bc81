"""Participant-facing text in English and Spanish (plain language; a test checks both exist)."""

from __future__ import annotations

from typing import Any

from litestar import Request

LANGUAGES = ("en", "es")
LANGUAGE_NAMES = {"en": "English", "es": "Español"}

TEXT: dict[str, dict[str, str]] = {
    "me.login.title": {"en": "Sign in", "es": "Entrar"},
    "me.login.intro": {
        "en": "Sign in to see who can see your information, change your mind, and see who "
              "has looked.",
        "es": "Entre para ver quién puede ver su información, cambiar de opinión y ver quién "
              "la ha mirado."},
    "me.username": {"en": "Username", "es": "Nombre de usuario"},
    "me.passphrase": {"en": "Passphrase", "es": "Frase de contraseña"},
    "me.totp": {"en": "6-digit code (only if you set up an authenticator app)",
                "es": "Código de 6 dígitos (solo si configuró una aplicación de autenticación)"},
    "me.sign_in": {"en": "Sign in", "es": "Entrar"},
    "me.first_time": {"en": "First time here? Use the code from your case manager.",
                      "es": "¿Es su primera vez? Use el código que le dio su administrador de "
                            "caso."},
    "me.enrol.title": {"en": "Set up your sign-in", "es": "Configure su acceso"},
    "me.enrol.intro": {
        "en": "Enter the ID and the one-time code from the slip your case manager gave you. "
              "Then choose a username and a passphrase.",
        "es": "Escriba la identificación y el código de un solo uso de la hoja que le dio su "
              "administrador de caso. Luego elija un nombre de usuario y una frase de "
              "contraseña."},
    "me.participant_id": {"en": "Your ID (for example LP-1001)",
                          "es": "Su identificación (por ejemplo LP-1001)"},
    "me.code": {"en": "One-time code", "es": "Código de un solo uso"},
    "me.choose_username": {"en": "Choose a username", "es": "Elija un nombre de usuario"},
    "me.choose_passphrase": {
        "en": "Choose a passphrase (at least 10 characters; a few words are easy to remember)",
        "es": "Elija una frase de contraseña (al menos 10 caracteres; unas palabras son fáciles "
              "de recordar)"},
    "me.enrol.submit": {"en": "Save and sign in", "es": "Guardar y entrar"},
    "me.home.title": {"en": "Your information", "es": "Su información"},
    "me.home.hello": {"en": "Hello", "es": "Hola"},
    "me.home.intro": {
        "en": "Here you decide who can see your information. Only you can see this page.",
        "es": "Aquí usted decide quién puede ver su información. Solo usted puede ver esta "
              "página."},
    "me.name_unavailable": {
        "en": "Your name cannot be shown right now. This was recorded so staff can fix it.",
        "es": "Su nombre no se puede mostrar ahora. Quedó registrado para que el personal lo "
              "arregle."},
    "me.security.title": {"en": "Add an authenticator app", "es": "Agregar una aplicación de "
                                                                 "autenticación"},
    "me.security.intro": {
        "en": "This is optional. An authenticator app on your phone shows a new 6-digit code "
              "every 30 seconds; after this, you enter that code when you sign in.",
        "es": "Es opcional. Una aplicación de autenticación en su teléfono muestra un código "
              "nuevo de 6 dígitos cada 30 segundos; después de esto, usted escribe ese código "
              "al entrar."},
    "me.security.key": {"en": "Enter this key in the app", "es": "Escriba esta clave en la "
                                                                  "aplicación"},
    "me.security.code": {"en": "Then type the 6-digit code the app shows",
                         "es": "Luego escriba el código de 6 dígitos que muestra la aplicación"},
    "me.security.submit": {"en": "Turn on", "es": "Activar"},
    "me.security.link": {"en": "Add an authenticator app (optional)",
                         "es": "Agregar una aplicación de autenticación (opcional)"},
    "me.totp_added": {"en": "Your authenticator app is on.",
                      "es": "Su aplicación de autenticación está activada."},
    "me.sign_out": {"en": "Sign out", "es": "Salir"},
    "me.language": {"en": "Language", "es": "Idioma"},
    "me.help": {
        "en": "Trouble signing in? Your case manager can give you a new code.",
        "es": "¿Problemas para entrar? Su administrador de caso le puede dar un código nuevo."},
    "me.signed_out": {"en": "You are signed out.", "es": "Usted salió de su cuenta."},
}


def language(request: Request[Any, Any, Any]) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    return chosen if chosen in LANGUAGES else "en"


def translator(lang: str) -> dict[str, str]:
    return {key: versions[lang] for key, versions in TEXT.items()}
