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
    "me.sharing.title": {"en": "Who can see what about you", "es": "Quién puede ver qué de usted"},
    "me.sharing.none": {"en": "Right now you are not sharing anything with other agencies.",
                        "es": "Ahora no comparte nada con otras agencias."},
    "me.sharing.not_shared": {"en": "Not shared with anyone outside the agency that wrote it:",
                              "es": "No se comparte con nadie fuera de la agencia que lo "
                                    "escribió:"},
    "me.sharing.today": {"en": "Today, with your permission:",
                         "es": "Hoy, con su permiso:"},
    "me.sharing.signed": {"en": "The permissions you signed", "es": "Los permisos que firmó"},
    "me.sharing.no_consents": {"en": "You have not signed any permission yet.",
                               "es": "Todavía no ha firmado ningún permiso."},
    "me.sharing.drafts": {"en": "Waiting for your signature", "es": "Esperando su firma"},
    "me.sharing.drafts_help": {
        "en": "These are not in effect yet. Your case manager will go over them with you.",
        "es": "Todavía no están vigentes. Su administrador de caso los revisará con usted."},
    "me.sharing.asked_more": {
        "en": "You asked to share more. Your case manager will go through it with you:",
        "es": "Usted pidió compartir más. Su administrador de caso lo revisará con usted:"},
    "me.sharing.asked_less": {
        "en": "You asked to share less. Your case manager will go through it with you:",
        "es": "Usted pidió compartir menos. Su administrador de caso lo revisará con usted:"},
    "me.sharing.history": {"en": "Ended", "es": "Terminados"},
    "me.status.revoked": {"en": "You took this back", "es": "Usted retiró esto"},
    "me.status.expired": {"en": "Expired", "es": "Venció"},
    "me.status.superseded": {"en": "Replaced by a newer version",
                             "es": "Reemplazado por una versión nueva"},
    "me.status.entered_in_error": {"en": "Entered by mistake", "es": "Registrado por error"},
    "me.revoke.link": {"en": "Take this back", "es": "Retirar esto"},
    "me.revoke.title": {"en": "Take back this permission?", "es": "¿Retirar este permiso?"},
    "me.revoke.stops": {"en": "If you take it back, this stops right away:",
                        "es": "Si lo retira, esto se detiene de inmediato:"},
    "me.revoke.after": {
        "en": "What was already shared stays where it is. You can give permission again "
              "later with your case manager.",
        "es": "Lo que ya se compartió se queda donde está. Puede dar permiso otra vez más "
              "tarde con su administrador de caso."},
    "me.revoke.confirm": {"en": "Yes, take it back", "es": "Sí, retirarlo"},
    "me.revoke.cancel": {"en": "No, keep it", "es": "No, mantenerlo"},
    "me.revoke.done": {"en": "Done. That permission has ended and your case manager will see "
                              "it.",
                       "es": "Listo. Ese permiso terminó y su administrador de caso lo verá."},
    "me.revoke.locked": {
        "en": "You cannot take this one back yet because it is a condition of your court "
              "case. You can take it back from:",
        "es": "Todavía no puede retirar este porque es una condición de su caso en la corte. "
              "Puede retirarlo a partir de:"},
    "me.change.link": {"en": "Ask to share more or less", "es": "Pedir compartir más o menos"},
    "me.change.title": {"en": "Ask for a change", "es": "Pedir un cambio"},
    "me.change.intro": {
        "en": "Tell us what you want. Your case manager will prepare it and go over it with you "
              "before anything changes.",
        "es": "Díganos lo que quiere. Su administrador de caso lo preparará y lo revisará con "
              "usted antes de que algo cambie."},
    "me.change.more": {"en": "Share more", "es": "Compartir más"},
    "me.change.less": {"en": "Share less", "es": "Compartir menos"},
    "me.change.what": {"en": "What would you like? (for example: let the clinic see my housing)",
                       "es": "¿Qué le gustaría? (por ejemplo: que la clínica vea mi vivienda)"},
    "me.change.send": {"en": "Send to my case manager", "es": "Enviar a mi administrador de "
                                                              "caso"},
    "me.change.sent": {"en": "Sent. Your case manager will talk with you about it.",
                       "es": "Enviado. Su administrador de caso hablará con usted."},
    "me.change.problem": {"en": "Choose more or less, and write what you would like.",
                          "es": "Elija más o menos, y escriba lo que le gustaría."},
    "me.looked.link": {"en": "Who has looked at my information",
                       "es": "Quién ha mirado mi información"},
    "me.looked.title": {"en": "Who has looked at your information",
                        "es": "Quién ha mirado su información"},
    "me.looked.none": {"en": "No one outside the agencies that wrote it has looked yet.",
                       "es": "Nadie fuera de las agencias que la escribieron la ha mirado."},
    "me.looked.consent": {"en": "because you agreed", "es": "porque usted aceptó"},
    "me.looked.break_glass": {"en": "in a medical emergency", "es": "en una emergencia médica"},
    "me.looked.refused_break_glass": {"en": "asked for emergency access and was refused",
                                      "es": "pidió acceso de emergencia y se le negó"},
    "me.looked.refused_not_on_team": {
        "en": "tried to open your information and was stopped, because they do not work "
              "with you",
        "es": "intentó abrir su información y no se le permitió, porque no trabajan con "
              "usted"},
    "me.looked.unrecorded": {
        "en": "and no reason was recorded: the program's compliance officer checks every case "
              "like this",
        "es": "y no quedó registrada la razón: el oficial de cumplimiento del programa revisa "
              "cada caso así"},
    "me.looked.saw": {"en": "saw", "es": "vio"},
    "me.looked.your_info": {"en": "your information", "es": "su información"},
    "me.back": {"en": "Back", "es": "Volver"},
    "me.sign_out": {"en": "Sign out", "es": "Salir"},
    "me.language": {"en": "Language", "es": "Idioma"},
    "me.help": {
        "en": "Trouble signing in? Your case manager can give you a new code.",
        "es": "¿Problemas para entrar? Su administrador de caso le puede dar un código nuevo."},
    "me.signed_out": {"en": "You are signed out.", "es": "Usted salió de su cuenta."},
    "me.revoke.refused": {"en": "This permission cannot be taken back right now.",
                          "es": "Este permiso no se puede retirar en este momento."},
    # Error pages under /me.
    "error.404": {"en": "We could not find that page", "es": "No encontramos esa página"},
    "error.403": {"en": "You cannot open this page", "es": "Usted no puede abrir esta página"},
    "error.500": {"en": "Something went wrong", "es": "Algo salió mal"},
    "error.other": {"en": "That did not work", "es": "Eso no funcionó"},
    "error.500_help": {
        "en": "Nothing was shown or changed. Please try again in a minute. If it keeps "
              "happening, tell your case manager.",
        "es": "No se mostró ni se cambió nada. Intente otra vez en un minuto. Si sigue "
              "pasando, dígaselo a su administrador de caso."},
    "error.back": {"en": "Back to your page", "es": "Volver a su página"},
    # The page frame (base.html) on participant pages.
    "base.skip": {"en": "Skip to main content", "es": "Saltar al contenido principal"},
    "base.nav": {"en": "Main", "es": "Principal"},
    "base.footer": {
        "en": "Information here is shared only to coordinate your care in LEAD. Every look at "
              "it is recorded.",
        "es": "La información de aquí se comparte solo para coordinar su atención en LEAD. "
              "Cada vez que alguien la mira, queda registrado."},
    # Refused sign-ins (portal.auth.service.SignInRefused codes), as participants read them.
    "me.error.bad_enrolment_code": {
        "en": "That ID and code do not match. Check the slip from your case manager.",
        "es": "Esa identificación y ese código no coinciden. Revise la hoja que le dio su "
              "administrador de caso."},
    "me.error.expired_enrolment_code": {
        "en": "That code has expired. Ask your case manager for a new one.",
        "es": "Ese código ya venció. Pida uno nuevo a su administrador de caso."},
    "me.error.participant_exited": {
        "en": "You have left LEAD, so this code no longer works. If you want to come back, "
              "talk to a LEAD case manager.",
        "es": "Usted salió de LEAD, así que este código ya no sirve. Si quiere volver, hable "
              "con un administrador de caso de LEAD."},
    "me.error.locked": {
        "en": "Too many tries. Please wait {minutes} minutes, or ask your case manager to "
              "reset your sign-in.",
        "es": "Demasiados intentos. Espere {minutes} minutos, o pida a su administrador de "
              "caso que reinicie su acceso."},
    "me.error.bad_credentials": {
        "en": "That username and passphrase do not match.",
        "es": "Ese nombre de usuario y esa frase de contraseña no coinciden."},
    "me.error.totp_required": {
        "en": "Enter the 6-digit code from your authenticator app.",
        "es": "Escriba el código de 6 dígitos de su aplicación de autenticación."},
    "me.error.bad_totp": {
        "en": "That 6-digit code is not right. Codes change every 30 seconds; try again.",
        "es": "Ese código de 6 dígitos no es correcto. Los códigos cambian cada 30 segundos; "
              "intente otra vez."},
    "me.error.no_credential": {"en": "Set up your sign-in first.",
                               "es": "Primero configure su acceso."},
    "me.error.passphrase_short": {
        "en": "Use at least 10 characters. A few words you will remember work well.",
        "es": "Use al menos 10 caracteres. Unas palabras que recuerde funcionan bien."},
    "me.error.passphrase_long": {"en": "Use at most 200 characters.",
                                 "es": "Use como máximo 200 caracteres."},
    "me.error.username_invalid": {
        "en": "Choose a username of 3 to 64 letters or digits (dots and dashes are fine).",
        "es": "Elija un nombre de usuario de 3 a 64 letras o números (puede usar puntos y "
              "guiones)."},
    "me.error.username_taken": {"en": "That username is taken. Please choose another.",
                                "es": "Ese nombre de usuario ya está en uso. Elija otro."},
    "me.error.other": {"en": "That did not work. Please try again, or ask your case manager.",
                       "es": "Eso no funcionó. Intente otra vez, o pregunte a su administrador "
                             "de caso."},
}


def refusal_text(code: str, problems: tuple[str, ...], params: dict[str, int],
                 lang: str) -> str:
    """A refused participant sign-in or enrolment (SignInRefused), in the participant's
    language: what was wrong, or each thing to fix."""
    keys = [f"me.error.{p}" for p in problems] or [f"me.error.{code}"]
    return " ".join(TEXT.get(key, TEXT["me.error.other"])[lang].format(**params)
                    for key in keys)


def language(request: Request[Any, Any, Any]) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    return chosen if chosen in LANGUAGES else "en"


def translator(lang: str) -> dict[str, str]:
    return {key: versions[lang] for key, versions in TEXT.items()}
