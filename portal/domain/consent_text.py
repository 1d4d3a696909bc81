"""A consent in plain language, English and Spanish: the words the participant signs and sees."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from babel.dates import format_date

from portal.domain.consent import (
    NOTHING_OCCURRED,
    ConsentEvent,
    ConsentKind,
    Directive,
    Occurred,
    ProvisionEffect,
    event_of,
    has_occurred,
    revocable_from,
)
from portal.domain.vocabulary import DataCategory, Purpose, Role, Sector

# The version of the consent text shown and signed, per language (kept with each consent).
CONSENT_TEXT_VERSIONS = {"en": "2026-11-en-1", "es": "2026-11-es-1"}
REVOCATION_STATEMENT = (
    "You can take back (revoke) this permission at any time, in writing or by telling your case "
    "manager, or from the portal. Revoking does not undo sharing that already happened."
)


CATEGORY_WORDS: dict[str, dict[DataCategory, str]] = {
    "en": {
        DataCategory.CONTACT: "how to reach you", DataCategory.CASE_PLAN: "your case plan",
        DataCategory.PROGRESS: "how you are doing in the program",
        DataCategory.HOUSING: "your housing", DataCategory.BENEFITS: "your benefits",
        DataCategory.HEALTH: "your physical health",
        DataCategory.MENTAL_HEALTH: "your mental health",
        DataCategory.SUD_TREATMENT: "your substance use treatment (drug and alcohol treatment)",
        DataCategory.JUSTICE: "your court and probation information"},
    "es": {
        DataCategory.CONTACT: "cómo comunicarse con usted", DataCategory.CASE_PLAN:
        "su plan de caso", DataCategory.PROGRESS: "cómo le va en el programa",
        DataCategory.HOUSING: "su vivienda", DataCategory.BENEFITS: "sus beneficios",
        DataCategory.HEALTH: "su salud física", DataCategory.MENTAL_HEALTH: "su salud mental",
        DataCategory.SUD_TREATMENT: "su tratamiento por uso de sustancias (drogas y alcohol)",
        DataCategory.JUSTICE: "su información de la corte y de libertad condicional"},
}

PURPOSE_WORDS: dict[str, dict[Purpose, str]] = {
    "en": {Purpose.TREAT: "to treat you", Purpose.CAREMGT: "to coordinate your care in LEAD",
           Purpose.HOPERAT: "to run and check the program",
           Purpose.ETREAT: "in a medical emergency",
           Purpose.LEADMON: "to check your progress for the court or probation"},
    "es": {Purpose.TREAT: "para darle tratamiento",
           Purpose.CAREMGT: "para coordinar su atención en LEAD",
           Purpose.HOPERAT: "para manejar y revisar el programa",
           Purpose.ETREAT: "en una emergencia médica",
           Purpose.LEADMON: "para revisar su progreso para la corte o la libertad condicional"},
}

# "any <sector> agency", for consents that name a class of recipients or disclosers.
SECTOR_WORDS: dict[str, dict[Sector, str]] = {
    "en": {Sector.CASE_MANAGEMENT: "any case management agency",
           Sector.SUD_TREATMENT: "any substance use treatment program",
           Sector.MENTAL_HEALTH: "any mental health agency", Sector.HEALTH: "any health clinic",
           Sector.HOUSING: "any housing agency", Sector.POLICE: "any police department",
           Sector.PROSECUTION: "any prosecutor's office", Sector.COURT: "any court",
           Sector.PROBATION: "any probation office",
           Sector.DEFENSE: "any public defender or legal aid office"},
    "es": {Sector.CASE_MANAGEMENT: "cualquier agencia de administración de casos",
           Sector.SUD_TREATMENT: "cualquier programa de tratamiento por uso de sustancias",
           Sector.MENTAL_HEALTH: "cualquier agencia de salud mental",
           Sector.HEALTH: "cualquier clínica de salud",
           Sector.HOUSING: "cualquier agencia de vivienda",
           Sector.POLICE: "cualquier departamento de policía",
           Sector.PROSECUTION: "cualquier oficina de la fiscalía",
           Sector.COURT: "cualquier corte", Sector.PROBATION: "cualquier oficina de libertad "
                                                               "condicional",
           Sector.DEFENSE: "cualquier defensoría pública u oficina de ayuda legal"},
}

# Staff roles as a participant reads them ("who has looked at my information").
ROLE_WORDS: dict[str, dict[Role, str]] = {
    "en": {Role.CASE_MANAGER: "case manager", Role.COUNSELOR: "counselor",
           Role.CLINICIAN: "clinician", Role.HOUSING_NAVIGATOR: "housing navigator",
           Role.POLICE_OFFICER: "police officer", Role.PROSECUTOR: "prosecutor",
           Role.PROBATION_OFFICER: "probation officer", Role.COURT_LIAISON: "court liaison",
           Role.DEFENDER: "defender", Role.COMPLIANCE_OFFICER: "compliance officer",
           Role.ORG_ADMIN: "administrator"},
    "es": {Role.CASE_MANAGER: "administrador de caso", Role.COUNSELOR: "consejero",
           Role.CLINICIAN: "clínico", Role.HOUSING_NAVIGATOR: "guía de vivienda",
           Role.POLICE_OFFICER: "policía", Role.PROSECUTOR: "fiscal",
           Role.PROBATION_OFFICER: "oficial de libertad condicional",
           Role.COURT_LIAISON: "enlace de la corte", Role.DEFENDER: "defensor",
           Role.COMPLIANCE_OFFICER: "oficial de cumplimiento", Role.ORG_ADMIN: "administrador"},
}

WORDS = {
    "en": {"can_see": "{who} can see {what}", "until": "until {when}",
           "until_event": "until {event}", "so": "so they can {why}",
           "unknown_event": "an event the portal does not know",
           "not": "{who} cannot see {what}", "and": "and", "or": "or", "from": "from {who}",
           "revoke": "You can take back this permission at any time by telling your case "
                     "manager or from the portal. Taking it back does not undo sharing that "
                     "already happened.",
           "revoke_cj": "You cannot take this back until {when}, because it is a condition of "
                        "your case. After that, you can.",
           "part2": "This includes information about substance use treatment, which federal "
                    "law (42 CFR Part 2) protects. It cannot be shared further without your "
                    "written permission.",
           "unknown": "an agency",
           "title": "Consent to share information",
           "agree": "I have read this (or had it read to me) and I agree.",
           "signed": "Signed by {signer} on {when} UTC; witness: {witness}."},
    "es": {"can_see": "{who} puede ver {what}", "until": "hasta el {when}",
           "until_event": "hasta {event}", "so": "{why}",
           "unknown_event": "un evento que el portal no conoce",
           "not": "{who} no puede ver {what}", "and": "y", "or": "o", "from": "de {who}",
           "revoke": "Usted puede retirar este permiso en cualquier momento, diciéndole a su "
                     "administrador de caso o desde el portal. Retirarlo no deshace lo que ya "
                     "se compartió.",
           "revoke_cj": "Usted no puede retirar esto hasta {when}, porque es una condición de "
                        "su caso. Después, sí puede.",
           "part2": "Esto incluye información sobre tratamiento por uso de sustancias, que la "
                    "ley federal (42 CFR Parte 2) protege. No se puede compartir más sin su "
                    "permiso por escrito.",
           "unknown": "una agencia",
           "title": "Consentimiento para compartir información",
           "agree": "Lo he leído (o me lo leyeron) y estoy de acuerdo.",
           "signed": "Firmado por {signer} el {when} UTC; testigo: {witness}."},
}


# 42 CFR 2.31(a)(10), required in a consent for treatment, payment and health care operations
# (2.33(b)): what redisclosure means, and that refusing to sign does not cost treatment.
TPO_STATEMENT = {
    "en": "The agencies you name can share these records again for your treatment, payment "
          "or their health care work. Once shared again, federal law (42 CFR Part 2) may no "
          "longer protect them. You do not have to sign. If you do not sign, you still get "
          "treatment; only this sharing does not happen.",
    "es": "Las agencias que usted nombra pueden volver a compartir estos registros para su "
          "tratamiento, el pago o su trabajo de atención médica. Después de compartirlos otra "
          "vez, es posible que la ley federal (42 CFR Parte 2) ya no los proteja. Usted no "
          "tiene que firmar. Si no firma, igual recibe tratamiento; solo no se comparte esto.",
}


EVENT_WORDS: dict[str, dict[ConsentEvent, str]] = {
    "en": {ConsentEvent.LEAD_EXIT: "you leave LEAD",
           ConsentEvent.FINAL_DISPOSITION: "your case is finally decided",
           ConsentEvent.TREATMENT_EPISODE_END: "your treatment ends"},
    "es": {ConsentEvent.LEAD_EXIT: "que usted salga de LEAD",
           ConsentEvent.FINAL_DISPOSITION: "que se decida su caso de forma final",
           ConsentEvent.TREATMENT_EPISODE_END: "que termine su tratamiento"},
}


def event_words(value: str | None, lang: str) -> str:
    event = event_of(value)
    return EVENT_WORDS[lang][event] if event is not None else WORDS[lang]["unknown_event"]


def _join(items: list[str], lang: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {WORDS[lang]['and']} " + items[-1]


def _who(refs: frozenset[str], names: Mapping[str, str], lang: str) -> str:
    return _join(sorted(names.get(ref, WORDS[lang]["unknown"]) for ref in refs), lang)


def _purpose(purposes: frozenset[Purpose], lang: str) -> str:
    phrases = [PURPOSE_WORDS[lang][p] for p in sorted(purposes)]
    text = _join(phrases, lang)
    # "so they can to treat you" reads badly: the English purposes are infinitive phrases.
    return text.removeprefix("to ") if lang == "en" else text


def _when(d: Directive, lang: str) -> str:
    if d.expires_on is not None:
        return WORDS[lang]["until"].format(when=spoken_date(d.expires_on, lang))
    return WORDS[lang]["until_event"].format(event=event_words(d.expiry_event, lang))


# The date in words, by Babel's CLDR data: Spanish uses its "long" format (3 de enero de 2027);
# English keeps the day-first order participants have always read (3 January 2027), which is
# not CLDR's American "long" (January 3, 2027).
DATE_FORMATS = {"en": "d MMMM y", "es": "long"}


def spoken_date(day: date, lang: str) -> str:
    lang = lang if lang in DATE_FORMATS else "en"
    return format_date(day, DATE_FORMATS[lang], locale=lang)


def revocable_when(d: Directive, lang: str) -> str | None:
    """When a 42 CFR 2.35 consent becomes revocable, in the participant's words."""
    lang = lang if lang in WORDS else "en"
    parts = []
    if d.revocable_after is not None:
        parts.append(spoken_date(d.revocable_after, lang))
    if d.revocable_after_event:
        parts.append(event_words(d.revocable_after_event, lang))
    return f" {WORDS[lang]['or']} ".join(parts) or None


def sentences(d: Directive, names: Mapping[str, str], lang: str = "en",
              today: date | None = None,
              occurred: Occurred = NOTHING_OCCURRED) -> list[str]:
    """The consent as sentences a participant understands. ``names`` maps ``org:<slug>`` and
    ``sector:<sector>`` references to readable names. With ``today``, a 42 CFR 2.35 consent
    whose date to become revocable has passed says it can be taken back."""
    lang = lang if lang in WORDS else "en"
    w = WORDS[lang]
    out = []
    for p in d.provisions:
        what = _join([CATEGORY_WORDS[lang][c] for c in sorted(p.categories)], lang)
        who = _who(p.recipients, names, lang)
        source = w["from"].format(who=_who(p.disclosers, names, lang))
        if p.effect is ProvisionEffect.PERMIT:
            sentence = (w["can_see"].format(who=who, what=what) + f" {source} "
                        + _when(d, lang) + ", " + w["so"].format(why=_purpose(p.purposes, lang)))
        else:
            sentence = w["not"].format(who=who, what=what) + f" {source}"
        out.append(sentence[0].upper() + sentence[1:] + ".")
    if d.covers_part2:
        out.append(w["part2"])
    if d.kind is ConsentKind.PART2_TPO:
        # What was shown and signed, kept with the consent (checked by missing_elements).
        out.append(d.tpo_statement or TPO_STATEMENT[lang])
    locked = d.kind is ConsentKind.PART2_CRIMINAL_JUSTICE and revocable_from(d) and not (
        today is not None and (
            (d.revocable_after is not None and today >= d.revocable_after)
            or has_occurred(d.revocable_after_event, occurred, today)))
    if locked:
        out.append(w["revoke_cj"].format(when=revocable_when(d, lang)))
    else:
        out.append(w["revoke"])
    return out


def information_description(categories: list[DataCategory], part2_source: bool) -> str:
    """The 42 CFR 2.31(a)(3) description, stating SUD information explicitly when included."""
    labels = [c.info.label.lower() for c in sorted(categories)]
    text = "Information about: " + ", ".join(labels) + "."
    if DataCategory.SUD_TREATMENT in categories or part2_source:
        text += (" This includes substance use disorder (SUD) treatment information protected "
                 "by 42 CFR Part 2.")
    return text


SHARED_WORDS = {
    "en": {"sees": "{who} can see {what} from {source}, {until}.",
           "own": "Each agency can also see what it wrote itself."},
    "es": {"sees": "{who} puede ver {what} de {source}, {until}.",
           "own": "Cada agencia también puede ver lo que ella misma escribió."},
}


def shared_sentence(recipient: str, categories: list[DataCategory], source: str,
                    d: Directive, lang: str) -> str:
    """What one agency can see today from another, under the consent that permits it (the
    sentence comes from the decision, not from the consent's wording)."""
    lang = lang if lang in WORDS else "en"
    what = _join([CATEGORY_WORDS[lang][c] for c in sorted(categories)], lang)
    return SHARED_WORDS[lang]["sees"].format(who=recipient, what=what, source=source,
                                             until=_when(d, lang))
