#!/usr/bin/env python3
"""Write a synthetic milkb knowledge base with N systems, for benchmarks.

    python bench/generate.py N OUT_DIR [--seed 6]

OUT_DIR becomes a knowledge-base root: kb.toml, ontology/, site_build/ and queries/ are copied from this
repository, and so are the real entries/countries, entries/organizations and entries/sources. Then N
systems are generated into entries/systems/ in the documented entry format (entries/README.md):

- categories: the real concept ids of ontology/categories.ttl (weapon systems and components);
- origin, operators (some with since/until/note/source qualifiers), designer and manufacturer: the
  real countries and organizations (an organization of the origin country where there is one);
- quantities with units as people write them (`46 t`, `2,000 m`, `125 mm`, `70 km/h`, `1,000 hp`,
  `9,500 kg`, `45 mph`, `840 kW` …), about 3 per system, drawn from pools so that a 10,000-system base
  holds about 1,600 distinct quantity strings; some as sourced values, some with two sourced values
  of which one is `preferred`;
- aliases (plain, `{label, lang: ru}` in Cyrillic, `{label, kind: nickname}`), Markdown descriptions;
- links among generated systems: `variant_of` (families of at most 10, at most 3 levels), `based_on`,
  `armament` (guns and munitions, with a role) and `part_of` (support vehicles of a complex). Every
  link points to a system generated earlier, so there are no cycles.

The same N and seed give byte-identical files. Only the standard library is used. The target is
about 19 triples per system (the issue's 190,000 triples at 10,000 systems).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COPIED_DIRS = ("ontology", "site_build", "queries")
COPIED_ENTRIES = ("countries", "organizations", "sources")

# --- categories --------------------------------------------------------------------------------------

# The kind of quantities a category's systems get, by the nearest listed ancestor.
PROFILES = {
    "main-battle-tank": "tank",
    "armoured-fighting-vehicle": "afv",
    "artillery": "artillery",
    "rocket-artillery": "rocket-artillery",
    "air-defence-system": "air-defence",
    "man-portable-air-defence-system": "manpads",
    "anti-tank-weapon": "anti-tank",
    "unmanned-aerial-vehicle": "uav",
    "missile": "missile",
    "weapon": "gun",
    "munition": "munition",
    "support-vehicle": "support",
    "weapon-system": "afv",
    "component": "gun",
}
COMPONENT_PROFILES = {"gun", "munition", "support"}


def read_categories(path: Path) -> dict[str, str | None]:
    """Concept id -> broader concept id (None at the top) for the concepts of kbc:scheme."""
    text = path.read_text(encoding="utf-8")
    concepts: dict[str, str | None] = {}
    for statement in re.split(r"\s\.\s*\n", text):
        m = re.search(r"^kbc:([a-z0-9-]+)\s+a\s+skos:Concept\b", statement, re.MULTILINE)
        if not m or "skos:inScheme kbc:scheme" not in statement:
            continue
        broader = re.search(r"skos:broader\s+kbc:([a-z0-9-]+)", statement)
        concepts[m.group(1)] = broader.group(1) if broader else None
    if not concepts:
        sys.exit(f"no concepts of kbc:scheme found in {path}")
    return concepts


def profile_of(concept: str, broader: dict[str, str | None]) -> str:
    c: str | None = concept
    while c is not None:
        if c in PROFILES:
            return PROFILES[c]
        c = broader.get(c)
    return "afv"


# --- quantity pools ----------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    """A number as an entry writes it: `46`, `43.7`, `2,000` (thousands comma), `1,000.5`."""
    if abs(x - round(x)) < 1e-9:
        return f"{int(round(x)):,}"
    return f"{x:,.1f}" if abs(x * 10 - round(x * 10)) < 1e-9 else f"{x:,.2f}"


def _steps(lo: float, hi: float, step: float) -> list[float]:
    n = int(round((hi - lo) / step))
    return [round(lo + i * step, 3) for i in range(n + 1)]


def _pool(values, unit: str) -> list[str]:
    return [f"{_fmt(v)} {unit}" for v in values]


# Pool sizes add up to about 1,670 distinct strings, all reached at 10,000 systems.
POOLS = {
    "mass_t": _pool(_steps(8, 72, 0.25), "t"),                      # 257: tanks, vehicles, artillery
    "mass_light_t": _pool(_steps(0.5, 8, 0.1), "t"),                # 76: towed guns, missiles
    "mass_kg": _pool(_steps(10, 1500, 10), "kg"),                   # 150: drones, missiles, munitions, guns
    "caliber_mm": _pool([5.45, 5.56, 7.62, 12.7, 14.5, 20, 23, 25, 30, 35, 40, 57, 73, 76, 76.2, 82, 85,
                         90, 100, 105, 107, 115, 120, 122, 125, 127, 130, 140, 152, 152.4, 155, 160, 170,
                         180, 200, 203, 220, 227, 240, 280, 300, 310, 320, 350, 400, 420, 450, 500, 533,
                         600, 610, 650, 700, 750, 800, 880, 900, 1000]
                        + _steps(60, 230, 2), "mm"),                # 144
    "caliber_cm": _pool([7.5, 8.8, 10.5, 12.2, 15, 15.5, 17, 21, 24, 28], "cm"),  # 10
    "range_km": _pool(_steps(1, 100, 0.5) + _steps(105, 600, 5) + _steps(650, 3000, 50), "km"),  # 347
    "range_m": _pool(_steps(200, 30000, 200), "m"),                 # 150, written `2,000 m`
    "speed_kmh": _pool(_steps(20, 140, 1) + _steps(150, 1200, 25) + _steps(1300, 9000, 100), "km/h"),  # 241
    "speed_mph": _pool(_steps(15, 80, 1), "mph"),                   # 66
    "power_hp": _pool(_steps(80, 1600, 10), "hp"),                  # 153, written `1,000 hp`
    "power_kw": _pool(_steps(60, 1200, 15), "kW"),                  # 77
}
# Per profile: (key, pool names, chance the system has the key).
PROFILE_KEYS = {
    "tank": [("combat_mass", ["mass_t"], 0.95), ("caliber", ["caliber_mm"], 0.8),
             ("max_speed", ["speed_kmh", "speed_mph"], 0.8), ("engine_power", ["power_hp", "power_kw"], 0.8)],
    "afv": [("combat_mass", ["mass_t"], 0.9), ("max_speed", ["speed_kmh", "speed_mph"], 0.85),
            ("engine_power", ["power_hp", "power_kw"], 0.8), ("max_range", ["range_km"], 0.35)],
    "artillery": [("caliber", ["caliber_mm", "caliber_cm"], 0.95), ("max_range", ["range_m", "range_km"], 0.9),
                  ("combat_mass", ["mass_t", "mass_light_t"], 0.85), ("max_speed", ["speed_kmh"], 0.35)],
    "rocket-artillery": [("launch_tubes", None, 0.95), ("caliber", ["caliber_mm"], 0.85),
                         ("max_range", ["range_km", "range_m"], 0.9), ("combat_mass", ["mass_t"], 0.7)],
    "air-defence": [("max_range", ["range_km", "range_m"], 0.95), ("max_speed", ["speed_kmh"], 0.7),
                    ("combat_mass", ["mass_t"], 0.7), ("launch_tubes", None, 0.3)],
    "manpads": [("max_range", ["range_m"], 0.95), ("caliber", ["caliber_mm"], 0.8),
                ("combat_mass", ["mass_kg"], 0.85)],
    "anti-tank": [("max_range", ["range_m", "range_km"], 0.95), ("caliber", ["caliber_mm"], 0.85),
                  ("combat_mass", ["mass_kg"], 0.85)],
    "uav": [("max_speed", ["speed_kmh", "speed_mph"], 0.9), ("max_range", ["range_km"], 0.9),
            ("combat_mass", ["mass_kg"], 0.85), ("engine_power", ["power_kw", "power_hp"], 0.4)],
    "missile": [("max_range", ["range_km"], 0.95), ("max_speed", ["speed_kmh"], 0.85),
                ("combat_mass", ["mass_kg", "mass_light_t"], 0.85), ("caliber", ["caliber_mm"], 0.7)],
    "gun": [("caliber", ["caliber_mm", "caliber_cm"], 0.95), ("max_range", ["range_m", "range_km"], 0.8),
            ("combat_mass", ["mass_kg", "mass_light_t"], 0.8)],
    "munition": [("caliber", ["caliber_mm"], 0.95), ("max_range", ["range_km", "range_m"], 0.85),
                 ("combat_mass", ["mass_kg"], 0.8)],
    "support": [("combat_mass", ["mass_t"], 0.9), ("max_speed", ["speed_kmh"], 0.8),
                ("engine_power", ["power_hp"], 0.7)],
}
CREW = {"tank": (3, 4), "afv": (2, 3), "artillery": (4, 10), "rocket-artillery": (3, 6), "air-defence": (3, 5),
        "manpads": (1, 2), "anti-tank": (1, 3), "support": (2, 3)}

# --- names and text ----------------------------------------------------------------------------------

SYLLABLES = ["ka", "ro", "vel", "mir", "tor", "za", "lin", "gor", "bar", "sta", "dre", "vos", "ne", "kri",
             "ol", "pa", "tu", "sev", "ra", "myr", "ul", "den", "ask", "bor"]
CYRILLIC = {"a": "а", "b": "б", "v": "в", "g": "г", "d": "д", "e": "е", "z": "з", "i": "и", "k": "к",
            "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "r": "р", "s": "с", "t": "т", "u": "у",
            "y": "ы", "h": "х", "c": "ц", "f": "ф", "j": "й", "w": "в", "x": "кс", "q": "к"}
NICKNAMES = ["Hammer", "Falcon", "Viper", "Thunder", "Buratino", "Flying Tank", "Steel Rain", "Whirlwind",
             "Hornet", "Badger", "Wolf", "Bear", "Lynx", "Kestrel", "Anvil", "Storm", "Scorpion", "Mamba"]
VARIANT_SUFFIXES = ["m", "b", "u", "d", "k", "bv", "m1", "m2", "um", "mk", "s", "a", "bm", "ud", "r"]
ADJECTIVES = ["tracked", "wheeled", "light", "heavy", "modernised", "export", "airborne", "amphibious",
              "command", "early-production", "late-production", "upgraded"]
NOUNS = {
    "tank": "main battle tank", "afv": "armoured vehicle", "artillery": "artillery system",
    "rocket-artillery": "rocket launcher", "air-defence": "air-defence system", "manpads": "portable air-defence system",
    "anti-tank": "anti-tank weapon", "uav": "unmanned aircraft", "missile": "missile", "gun": "gun",
    "munition": "munition", "support": "support vehicle",
}
FEATURES = ["a welded steel hull", "a digital fire-control system", "composite armour", "explosive reactive armour",
            "an automatic loader", "a thermal sight", "a hydropneumatic suspension", "a remote weapon station",
            "satellite navigation", "an inertial guidance unit", "a radar of its own", "a diesel engine",
            "a gas turbine", "a laser rangefinder", "a datalink to the battery command post", "NBC protection"]
NOTES = ["figure from the manufacturer's brochure", "export variant figure", "as reported at its first showing",
         "combat-loaded", "with the standard munition", "early-production figure", "per the cited article",
         "later batches differ", "rounded in the source"]
STATUS = ["in service", "in reserve", "retired", "captured vehicles", "on order"]


def quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def cyrillic(name: str) -> str:
    return "".join(CYRILLIC.get(ch, ch) for ch in name.lower()).upper() if name[:1].isupper() else name


# --- the generator -----------------------------------------------------------------------------------


class Generator:
    def __init__(self, n: int, seed: int):
        self.n = n
        self.rng = random.Random(seed)
        self.broader = read_categories(REPO / "ontology" / "categories.ttl")
        self.countries = sorted(p.stem for p in (REPO / "entries" / "countries").glob("*.yaml"))
        self.sources = sorted(p.stem for p in (REPO / "entries" / "sources").glob("*.yaml"))
        self.orgs_by_country: dict[str, list[str]] = defaultdict(list)
        self.orgs: list[str] = []
        for p in sorted((REPO / "entries" / "organizations").glob("*.yaml")):
            self.orgs.append(p.stem)
            m = re.search(r"^country:\s*([a-z0-9-]+)\s*$", p.read_text(encoding="utf-8"), re.MULTILINE)
            if m:
                self.orgs_by_country[m.group(1)].append(p.stem)
        producers = [c for c in ("soviet-union", "russia", "united-states", "ukraine", "germany", "united-kingdom",
                                 "france", "china", "sweden", "poland", "israel", "turkey", "italy", "south-korea",
                                 "india", "czechoslovakia", "iran", "japan", "north-korea", "norway")
                     if c in self.countries]
        self.origin_weights = [(c, 12 - min(i, 10)) for i, c in enumerate(producers)]
        self.origin_weights += [(c, 1) for c in self.countries if c not in producers]
        concepts = sorted(self.broader)
        self.profiles = {c: profile_of(c, self.broader) for c in concepts}
        # leaf concepts get most systems; components about a sixth
        leaves = {c for c in concepts if c not in set(self.broader.values())}
        self.weapon_categories = [c for c in concepts if self.profiles[c] not in COMPONENT_PROFILES]
        self.component_categories = [c for c in concepts if self.profiles[c] in COMPONENT_PROFILES]
        self.category_weights = {c: (6 if c in leaves else 1) for c in concepts}
        self.used_ids: set[str] = set()
        self.systems: list[dict] = []  # generated so far: id, name, category, profile, family root, depth, year
        self.family_size: dict[str, int] = defaultdict(int)
        self.children: dict[str, int] = defaultdict(int)
        self.quantities: set[str] = set()
        self.quantity_count = 0
        self.name_counter = 0

    # -- helpers --
    def pick_weighted(self, items: list[tuple[str, int]]) -> str:
        return self.rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]

    def new_root_name(self) -> tuple[str, str]:
        self.name_counter += 1
        word = "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.choice((1, 2, 2, 3)))).capitalize()
        number = self.name_counter * 7 % 997 + self.rng.randint(1, 9) * 1000 * (self.name_counter // 997)
        name = f"{word}-{number}" if self.rng.random() < 0.7 else f"{word[:3].upper()}-{number}"
        entry_id = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        while entry_id in self.used_ids:
            entry_id += "-" + str(self.rng.randint(2, 9))
            name += f"-{entry_id[-1]}"
        return entry_id, name

    def variant_name(self, parent: dict) -> tuple[str, str]:
        for suffix in VARIANT_SUFFIXES:
            entry_id = f"{parent['id']}{suffix}" if parent["id"][-1].isdigit() else f"{parent['id']}-{suffix}"
            if entry_id not in self.used_ids:
                return entry_id, f"{parent['name']}{suffix.upper()}"
        k = 2
        while f"{parent['id']}-v{k}" in self.used_ids:
            k += 1
        return f"{parent['id']}-v{k}", f"{parent['name']} v{k}"

    def quantity(self, pools: list[str], near: str | None = None) -> str:
        """A quantity string from one of `pools`; with `near`, a close value of the same pool (a figure
        another source gives for the same thing)."""
        if near is not None:
            pool = next(POOLS[name] for name in pools if near in POOLS[name])
            i = pool.index(near) + self.rng.choice((-3, -2, -1, 1, 2, 3))
            text = pool[min(max(i, 0), len(pool) - 1)]
        else:
            pool = POOLS[pools[0] if len(pools) == 1 or self.rng.random() < 0.7 else self.rng.choice(pools[1:])]
            text = self.rng.choice(pool)
        self.quantities.add(text)
        self.quantity_count += 1
        return text

    # -- one system --
    def system(self, i: int) -> tuple[str, str]:
        rng = self.rng
        components_wanted = self.n // 6
        parent = None
        if self.systems and rng.random() < 0.3:
            parent = rng.choice(self.systems[-200:])
            if parent["depth"] >= 3 or self.family_size[parent["root"]] >= 10 or self.children[parent["id"]] >= 4:
                parent = None
        if parent is not None:
            entry_id, name = self.variant_name(parent)
            category, root, depth = parent["category"], parent["root"], parent["depth"] + 1
            origin = parent["origin"]
            year = min(2024, parent["year"] + rng.randint(1, 12))
        else:
            entry_id, name = self.new_root_name()
            component = i < components_wanted and i % 3 != 2 or i >= components_wanted and rng.random() < 0.05
            pool = self.component_categories if component else self.weapon_categories
            category = rng.choices(pool, weights=[self.category_weights[c] for c in pool])[0]
            root, depth = entry_id, 0
            origin = self.pick_weighted(self.origin_weights)
            year = rng.randint(1950, 2022)
        self.used_ids.add(entry_id)
        profile = self.profiles[category]
        me = {"id": entry_id, "name": name, "category": category, "profile": profile, "root": root, "depth": depth,
              "origin": origin, "year": year}
        self.family_size[root] += 1
        if parent is not None:
            self.children[parent["id"]] += 1

        sources = rng.sample(self.sources, rng.choice((1, 1, 1, 2, 2)))
        lines = [f"name: {quoted(name)}"]
        r = rng.random()
        if r < 0.35:
            lines += ["aliases:", f"  - {{label: {quoted(cyrillic(name))}, lang: ru}}"]
        elif r < 0.42:
            lines += ["aliases:", f"  - {{label: {quoted(rng.choice(NICKNAMES))}, kind: nickname}}"]
        elif r < 0.5:
            lines += ["aliases:", f"  - {quoted(name.replace('-', ' '))}"]
        lines += self.description(me, parent)
        lines.append(f"category: {category}")
        if rng.random() < 0.95:
            lines.append(f"origin: {origin}")
        if parent is not None:
            lines.append(f"variant_of: {parent['id']}")
        elif self.systems and rng.random() < 0.12:
            base = rng.choice([s for s in self.systems[-300:] if s["profile"] not in ("gun", "munition")] or self.systems)
            lines += ["based_on:", f"  - {{system: {base['id']}, source: {sources[0]}}}"
                      if rng.random() < 0.3 else f"  - {base['id']}"]
        if profile == "support":
            hosts = [s for s in self.systems[-300:] if s["profile"] in ("rocket-artillery", "air-defence", "missile")]
            if hosts and rng.random() < 0.5:
                lines.append(f"part_of: [{rng.choice(hosts)['id']}]")
        orgs = self.orgs_by_country.get(origin) or self.orgs
        if rng.random() < 0.3:
            lines.append(f"designer: {rng.choice(orgs)}")
        if rng.random() < 0.25:
            lines += ["manufacturer:", f"  - {{organization: {rng.choice(orgs)}, source: {sources[0]}}}"
                      if rng.random() < 0.4 else f"  - {rng.choice(orgs)}"]
        if rng.random() < 0.8:
            lines.append(f"in_service: {year}" if rng.random() < 0.95
                         else f"in_service: {{value: {year}, source: {sources[-1]}}}")
        if profile in CREW and rng.random() < 0.5:
            lo, hi = CREW[profile]
            lines.append(f"crew: {rng.randint(lo, hi)}")
        lines += self.quantities_of(profile, sources)
        lines += self.armament(profile, sources)
        lines += self.operators(origin, year, sources)
        lines.append("sources:")
        lines += [f"  - {s}" for s in sources]
        self.systems.append(me)
        return entry_id, "\n".join(lines) + "\n"

    def description(self, me: dict, parent: dict | None) -> list[str]:
        rng = self.rng
        noun = NOUNS[me["profile"]]
        first = (f"{rng.choice(ADJECTIVES).capitalize()} variant of the {parent['name']}, "
                 f"in service from {me['year']}." if parent else
                 f"{rng.choice(ADJECTIVES).capitalize()} {noun} developed in the {me['year'] // 10 * 10}s.")
        features = rng.sample(FEATURES, rng.randint(1, 3))
        text = first + " It has " + ", ".join(features[:-1]) + (" and " if len(features) > 1 else "") + features[-1] + "."
        if rng.random() < 0.4:
            text += f" Known in service as the **{me['name']}**; figures differ between sources."
        words, out, line = text.split(), ["description: >-"], "  "
        for w in words:
            if len(line) + len(w) > 98:
                out.append(line.rstrip())
                line = "  "
            line += w + " "
        out.append(line.rstrip())
        return out

    def quantities_of(self, profile: str, sources: list[str]) -> list[str]:
        rng = self.rng
        lines = []
        for key, pools, chance in PROFILE_KEYS[profile]:
            if rng.random() >= chance:
                continue
            if pools is None:  # launch_tubes: an integer
                value = rng.choice((1, 2, 4, 6, 8, 12, 16, 20, 24, 30, 32, 40, 48))
                lines.append(f"{key}: {value}")
                continue
            r = rng.random()
            if r < 0.9:
                lines.append(f"{key}: {self.quantity(pools)}")
            elif r < 0.965:
                note = f", note: {quoted(rng.choice(NOTES))}" if rng.random() < 0.4 else ""
                lines.append(f"{key}: {{value: {quoted(self.quantity(pools))}, source: {rng.choice(sources)}{note}}}")
            else:  # sources disagree: two values, one preferred
                first = self.quantity(pools)
                second = self.quantity(pools, near=first)
                if len(sources) == 1:  # the disagreeing figure comes from another source, cited too
                    sources.append(rng.choice([x for x in self.sources if x != sources[0]]))
                lines += [f"{key}:",
                          f"  - {{value: {quoted(first)}, source: {sources[0]}, preferred: true}}",
                          f"  - {{value: {quoted(second)}, source: {sources[-1]}, note: {quoted(rng.choice(NOTES))}}}"]
        return lines

    def armament(self, profile: str, sources: list[str]) -> list[str]:
        rng = self.rng
        if profile in ("gun", "munition", "support") or rng.random() < 0.45:
            return []
        weapons = [s for s in self.systems[-400:] if s["profile"] in ("gun", "munition")]
        if not weapons:
            return []
        chosen = rng.sample(weapons, min(len(weapons), rng.choice((1, 1, 1, 2))))
        lines = ["armament:"]
        for n, w in enumerate(chosen):
            if rng.random() < 0.15:
                lines.append(f"  - {{system: {w['id']}, role: {'main' if n == 0 else 'secondary'}}}")
            else:
                lines.append(f"  - {w['id']}")
        return lines

    def operators(self, origin: str, year: int, sources: list[str]) -> list[str]:
        rng = self.rng
        k = rng.choice((0, 1, 1, 1, 1, 2, 2, 3))
        if k == 0:
            return []
        chosen = [origin] + rng.sample([c for c in self.countries if c != origin], k - 1)
        lines = ["operators:"]
        for c in chosen:
            r = rng.random()
            if r < 0.95:
                lines.append(f"  - {c}")
            else:
                since = min(2024, year + rng.randint(0, 20))
                extra = f", until: {min(2025, since + rng.randint(1, 15))}" if rng.random() < 0.3 else ""
                extra += f", status: {quoted(rng.choice(STATUS))}" if rng.random() < 0.3 else ""
                lines.append(f"  - {{country: {c}, since: {since}{extra}, source: {rng.choice(sources)}}}")
        return lines


def generate(n: int, out: Path, seed: int = 6, quiet: bool = False) -> dict:
    """Write the knowledge base into `out` (replacing entries/ there). Returns a few counts."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "kb.toml", out / "kb.toml")
    for d in COPIED_DIRS:
        if (out / d).exists():
            shutil.rmtree(out / d)
        shutil.copytree(REPO / d, out / d)
    entries = out / "entries"
    if entries.exists():
        shutil.rmtree(entries)
    for d in COPIED_ENTRIES:
        shutil.copytree(REPO / "entries" / d, entries / d)
    shutil.copy2(REPO / "entries" / "README.md", entries / "README.md")
    systems_dir = entries / "systems"
    systems_dir.mkdir(parents=True)
    g = Generator(n, seed)
    size = 0
    for i in range(n):
        entry_id, text = g.system(i)
        data = text.encode("utf-8")
        size += len(data)
        (systems_dir / f"{entry_id}.yaml").write_bytes(data)
    counts = {"systems": n, "distinct quantities": len(g.quantities), "quantities": g.quantity_count,
              "bytes": size, "variants": sum(1 for s in g.systems if s["depth"] > 0)}
    if not quiet:
        print(f"wrote {n} systems into {systems_dir} ({size / 1e6:.1f} MB); {counts['quantities']} quantities, "
              f"{counts['distinct quantities']} distinct; {counts['variants']} variants")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="number of systems")
    parser.add_argument("out", type=Path, help="the knowledge-base root to write (created; entries/ replaced)")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    if args.n < 1:
        parser.error("N must be at least 1")
    target = args.out.resolve()
    if target == REPO or REPO in target.parents or target in REPO.parents:
        parser.error("write the synthetic knowledge base outside the repository (e.g. under /tmp)")
    generate(args.n, args.out, args.seed)


if __name__ == "__main__":
    main()
