"""Street addresses: a house number and a street word (English, Romance, Germanic, Nordic, Slavic forms).

The patterns are costly, so a cheap look at the text's words decides which of them can match at all.
"""

from __future__ import annotations

import re

from engine.pii.names import CAP, UPPER

_HOUSE = r"\d{1,5}[A-Za-z]?(?:[/-]\d{1,4}[A-Za-z]?)?"
_UNIT = r"(?:(?:Apt|Apartment|Suite|Ste|Unit|Flat|Studio|Room|Floor|Level)\.? ?\w{1,5})"
_STREET_SUFFIX = (
    "Street|St|Road|Rd|Avenue|Ave|Av|Lane|Ln|Drive|Dr|Court|Ct|Way|Boulevard|Blvd|Place|Pl|Square|Sq|Terrace|"
    "Close|Crescent|Cres|Highway|Hwy|Parkway|Pkwy|Circle|Cir|Trail|Trl|Row|Walk|Grove|Gardens|Hill|Hills|Park|"
    "Mews|Path|Pike|Plaza|Alley|Crossing|Point|Ridge|Loop|Run|Expressway|Freeway|Motorway|Turnpike|Causeway|"
    "Bypass|Junction|Heights|Green|Gate|Gateway|Hollow|Landing|Manor|Meadow|Meadows|Mill|Mills|Orchard|Oval|"
    "Pass|Passage|Port|Route|Shore|Shores|Spring|Springs|Station|Summit|Track|Trace|Valley|View|Views|Village|"
    "Vista|Wharf|Wynd|Estate|Estates|Fields|Field|Parade|Quay|Rise|Brae|Vale|Bridge|Brook|Burg|Camp|Cape|"
    "Center|Centre|Club|Common|Corner|Corners|Cove|Creek|Dale|Dam|Divide|Extension|Falls|Ferry|Flat|Flats|Ford|"
    "Forest|Forge|Fork|Forks|Fort|Glen|Harbor|Harbour|Haven|Island|Isle|Key|Knoll|Lake|Lakes|Light|Lock|Lodge|"
    "Mission|Mount|Mountain|Neck|Pine|Pines|Plain|Plains|Prairie|Radial|Ramp|Ranch|Rapid|Rapids|Rest|River|"
    "Shoal|Skyway|Spur|Stravenue|Stream|Throughway|Trafficway|Tunnel|Underpass|Union|Via|Viaduct|Ville|Well|"
    "Wells|Amble|Approach|Arcade|Boardwalk|Chase|Concourse|Cul-de-sac|Esplanade|Glade|Promenade|Retreat|Strip|"
    "Villa|Villas|Copse|Courtyard|Tower|Towers|Meander|Anchorage|Rue|Yard|Mall|Circus|Embankment|Broadway|Fairway|"
    "Heath|Lawn|Lawns|Line|Nook|Outlook|Pathway|Pocket|Reserve|Ring|Serviceway|Slope|Steps|Terrace|Vue|Waters|"
    "Roadside|Range|Edge|Circlet|Distributor|Crossway|Ramble|Tollway|Trunkway|Busway|Cutting|Driveway|Elbow|End|"
    "Entrance|Frontage|Gap|Grange|Highroad|Interchange|Link|Lookout|Parklands|Pde|Plateau|Pursuit|Quadrant|"
    "Ridgeway|Rotary|Round|Subway|Thoroughfare|Tor|Walkway|Waterway|Boulevarde|Crest|Concord|Deviation"
)
_US_ADDRESS = re.compile(
    rf"(?:\b{_UNIT},? (?:{_HOUSE},? )?|\b{_HOUSE},? )(?:{CAP} ){{1,3}}(?:{_STREET_SUFFIX})s?\b\.?(?:,? {_UNIT}\b)?"
)
_COMPOUND_SUFFIX = (
    "straße|strasse|str\\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad|markt|"
    "straat|laan|boulevard|plein|gracht|hof|singel|kade|dreef|pad|steeg|baan|"
    "gatan|vägen|väg|gränd|stigen|torget|backen|gata|vei|veien|gaten|"
    "vej|gade|stræde|allé|plads|katu|tie|kuja|polku|bulevardi|utca|ulice|cesta"
)
_COMPOUND_ADDRESS = re.compile(
    rf"\b(?:{CAP}[ -])?(?=[{UPPER}])(?:[\w'’-]*)(?i:{_COMPOUND_SUFFIX}) ?,? {_HOUSE}\b"
)
_STRONG_PREFIX = (
    "rue|calle|c/|avenida|avda\\.|rua|travessa|viale|piazza|piazzale|vicolo|corso|strada|contrada|chemin|impasse|"
    "allée|quai|ul\\.|ulica|al\\.|aleja|pl\\.|plac|os\\.|osiedle|paseo|camino|carrera|ronda|travesía|glorieta|"
    "pasaje|callejón|rambla|alameda|praça|estrada|rodovia|ladeira"
)
_WEAK_PREFIX = (
    "avenue|boulevard|bd|place|route|cours|via|largo|plaza|cuesta|vía|c\\.|borgo|canale|rotonda|incrocio|stretto|"
    "setor|quadra|vila|favela|conjunto|lagoa|vale|trecho|núcleo|residencial|parque|morro|sítio|fazenda|"
    "condomínio|chácara|passeio|urbanización|camiño|distrito|viela|jardim|recanto|área|trevo|cañada|sector|acceso|pasadizo|pátio|esplanada|colônia|lago|vereda"
)
_PARTICLE = r"(?:de|del|de la|de las|de los|do|da|dos|das|des|du|di|della|degli|dei|le|la|les|el|y|e|d'|dell')"
_NAMED = rf"(?:(?:{_PARTICLE} )?{CAP}|\d{{1,2}} de {CAP})"
_PREFIX_ADDRESS_STRONG = re.compile(
    rf"(?:\b{_HOUSE},? )?\b(?:{_STRONG_PREFIX}) (?:{_NAMED} ?){{1,4}}(?:,? (?:n[º°o]\.? ?)?{_HOUSE}\b)?", re.I
)
_PREFIX_ADDRESS_WEAK = re.compile(
    rf"(?:\b{_HOUSE},? \b(?:{_WEAK_PREFIX}) (?:{_NAMED} ?){{1,4}}|\b(?:{_WEAK_PREFIX}) (?:{_NAMED} ?){{1,4}},? "
    rf"(?:n[º°o]\.? ?)?{_HOUSE}\b)", re.I
)
_FRENCH_ADDRESS = re.compile(rf"\b(?:avenue|boulevard|place|route|cours|allée|impasse|quai) (?:{_NAMED} ?){{1,4}}")


def _alternatives(pattern: str) -> frozenset[str]:
    return frozenset(re.sub(r"[^\w]", "", alt).lower() for alt in pattern.split("|"))


_STRONG_WORDS = _alternatives(_STRONG_PREFIX)
_WEAK_WORDS = _alternatives(_WEAK_PREFIX)
_FRENCH_WORDS = frozenset(("avenue", "boulevard", "place", "route", "cours", "allée", "impasse", "quai"))
_SUFFIX_ENDINGS = tuple(_alternatives(_COMPOUND_SUFFIX))


def find_addresses(text: str, has_digit: bool) -> list[tuple[int, int, str]]:
    """(start, end, value) of every street address found; `has_digit` says whether `text` has a digit."""
    # The patterns are costly; a cheap look at the words decides which of them can match at all.
    words = set(re.findall(r"\w+", text.lower()))
    patterns = []
    if has_digit:
        patterns.append(_US_ADDRESS)
        if any(w.endswith(_SUFFIX_ENDINGS) for w in words):
            patterns.append(_COMPOUND_ADDRESS)
    if words & _STRONG_WORDS:
        patterns.append(_PREFIX_ADDRESS_STRONG)
    if has_digit and words & _WEAK_WORDS:
        patterns.append(_PREFIX_ADDRESS_WEAK)
    if words & _FRENCH_WORDS:
        patterns.append(_FRENCH_ADDRESS)
    found = []
    for pattern in patterns:
        for m in pattern.finditer(text):
            value = m.group(0).rstrip(" ,")
            if pattern is _PREFIX_ADDRESS_STRONG and not any(ch.isupper() for ch in value[1:]):
                continue
            found.append((m.start(), m.start() + len(value), value))
    return found

