"""Synthetic FHIR R4 patients and records, for demos, seeding and tests (not library API).

The data is deterministic: everything is drawn from the ``random.Random`` passed in, and dates
are relative to the fixed ``AS_OF`` rather than the wall clock, so a seed always gives the same
bytes (and therefore the same CIDs and content hashes). Names and identifiers are made up. The
codes are real (LOINC, SNOMED CT, RxNorm, CVX, UCUM) and the values are plausible for an adult
outpatient. Lab values are drawn around their reference ranges, so some are flagged high or
low, and a patient's chronic conditions shape the rest of the chart: a diabetic gets metformin
and a high HbA1c. Every resource made here passes ``medvault.fhir.validate_resource``, so vital
signs meet the R4 vital-signs profiles (category, the profile's LOINC code, UCUM units).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from medvault.dev.fhir_codes import (
    ACUTE,
    ALLERGIES,
    ANALYTES,
    BMI,
    BP_PANEL,
    CHRONIC,
    CVX,
    FAMILY,
    GIVEN,
    HEIGHT,
    KIND_WEIGHTS,
    LOINC,
    MRN_SYSTEM,
    OBSERVATION_CATEGORIES,
    PANELS,
    PROFILE_CODES,
    RXNORM,
    SNOMED,
    STANDALONE_LABS,
    TERMINOLOGY,
    UCUM,
    VACCINES,
    VITAL_WEIGHTS,
    VITALS,
    WEIGHT,
    Allergy,
    Analyte,
    Problem,
)
from medvault.fhir import validate_resource

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping

__all__ = ["AS_OF", "synthetic_patient", "synthetic_records"]

Resource = dict[str, Any]

# "Now" for synthetic data. If it were the wall clock, the same seed would give different bytes on another day.
AS_OF = datetime(2025, 6, 30, 17, 0, tzinfo=UTC)

# --- small builders ------------------------------------------------------------------------------


def _new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _plain(display: str) -> str:
    """Drop a SNOMED semantic tag: "Asthma (disorder)" -> "Asthma"."""
    return display.removesuffix(" (disorder)").removesuffix(" (finding)")


def _concept(system: str, code: str, display: str) -> Resource:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": _plain(display)}


def _hl7(code_system: str, code: str, display: str) -> Resource:
    return {"coding": [{"system": TERMINOLOGY + code_system, "code": code, "display": display}]}


def _quantity(value: float, unit: str) -> Resource:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _number(value: float, decimals: int) -> float | int:
    return round(value) if decimals == 0 else round(value, decimals)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _parse_date(text: str) -> date:
    """A FHIR date ("1970", "1970-04" or "1970-04-12"), taking the first day of a partial date."""
    year, month, day = ([*text[:10].split("-"), "1", "1"])[:3]
    return date(int(year), int(month), int(day))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


# --- synthetic data ------------------------------------------------------------------------------


def synthetic_patient(rng: random.Random) -> dict[str, Any]:
    """A synthetic adult Patient (20 to 90 years old on ``AS_OF``) with a name, gender, birth date and MRN."""
    gender = rng.choice(("female", "male"))
    first, middle = rng.sample(GIVEN[gender], 2)
    birth = AS_OF.date() - timedelta(days=rng.randint(20 * 365, 90 * 365))
    return validate_resource(
        {
            "resourceType": "Patient",
            "id": _new_id(rng),
            "identifier": [
                {
                    "use": "usual",
                    "type": {**_hl7("v2-0203", "MR", "Medical record number"), "text": "Medical record number"},
                    "system": MRN_SYSTEM,
                    "value": str(rng.randrange(10**7, 10**8)),
                }
            ],
            "active": True,
            "name": [{"use": "official", "family": rng.choice(FAMILY), "given": [first, middle]}],
            "gender": gender,
            "birthDate": birth.isoformat(),
        }
    )


def synthetic_records(rng: random.Random, patient: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    """``count`` synthetic, validated records about ``patient``, oldest first.

    The mix holds lab and vital-sign Observations, DiagnosticReports followed by their result
    Observations, Conditions, MedicationRequests, Immunizations and AllergyIntolerances. Whenever
    ``count`` is at least 7, every one of these kinds is in it. Each record refers to the patient as
    ``Patient/<id>``. Its dates fall after the patient's 18th birthday (or after birth, for a
    younger patient) and before ``AS_OF``.
    """
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    chart = _Chart.open(rng, patient)
    # The first picks cover every kind: a report (its results are the lab Observations), then the
    # rest in random order. Each kind still owed keeps one slot free.
    others = [kind for kind in KIND_WEIGHTS if kind not in ("laboratory", "DiagnosticReport")]
    owed = ["DiagnosticReport", *rng.sample(others, len(others))]
    groups: list[tuple[datetime, list[Resource]]] = []
    remaining = count
    while remaining > 0:
        kind = owed.pop(0) if owed else rng.choices(list(KIND_WEIGHTS), list(KIND_WEIGHTS.values()))[0]
        group = chart.make(kind, room=max(1, remaining - len(owed)))
        if group is not None:
            groups.append(group)
            remaining -= len(group[1])
    groups.sort(key=lambda g: g[0])  # stable: a report stays just before its results
    return [validate_resource(resource) for _, resources in groups for resource in resources]


@dataclass
class _Chart:
    """A patient's chart as it is being generated: the patient's build, their problems, what is already recorded."""

    rng: random.Random
    subject: Resource
    birth: date
    start: datetime  # earliest record
    problems: dict[Problem, datetime]  # chronic problems and their onset
    height_cm: float
    weight_kg: float
    ranges: dict[str, tuple[float, float]]  # LOINC -> (low, high) where a problem moves the usual range
    unrecorded_problems: list[Problem] = field(default_factory=list)
    unrecorded_allergies: list[Allergy] = field(default_factory=list)

    @classmethod
    def open(cls, rng: random.Random, patient: Mapping[str, Any]) -> _Chart:
        if not isinstance(patient.get("id"), str):
            raise ValueError("the patient needs an id to be referred to")
        end = AS_OF.date() - timedelta(days=60)
        birth = _parse_date(patient["birthDate"]) if "birthDate" in patient else _add_years(end, -40)
        if birth >= end:
            raise ValueError(f"the patient's birthDate {birth} leaves no time for records before {AS_OF.date()}")
        adult = _add_years(birth, 18)
        first = max(adult, _add_years(AS_OF.date(), -15)) if adult < end else birth + timedelta(days=1)
        start = datetime.combine(first, time(), UTC)
        tall = {"female": (152, 178), "male": (163, 193)}.get(patient.get("gender", ""), (152, 193))
        height = rng.uniform(*tall)
        chart = cls(
            rng=rng,
            subject={"reference": f"Patient/{patient['id']}"},
            birth=birth,
            start=start,
            problems={},
            height_cm=round(height, 1),
            weight_kg=round(rng.uniform(19.0, 34.0) * (height / 100) ** 2, 1),  # a BMI of 19 to 34
            ranges={},
        )
        for problem in rng.sample(CHRONIC, rng.choice((0, 1, 1, 2, 2, 3))):
            # Onset in the first half of the chart, so there is room for treatment after it.
            chart.problems[problem] = chart.moment(start, start + (AS_OF - start) / 2)
            chart.ranges.update({loinc: (low, high) for loinc, low, high in problem.shifts})
        chart.unrecorded_problems = list(chart.problems)
        chart.unrecorded_allergies = rng.sample(ALLERGIES, len(ALLERGIES))
        return chart

    def moment(self, low: datetime | None = None, high: datetime | None = None) -> datetime:
        """A time in clinic hours from ``low`` (default: the chart's start) to ``high`` (default: AS_OF - 3 days)."""
        low, high = low or self.start, high or AS_OF - timedelta(days=3)
        day = low.date() + timedelta(days=self.rng.randint(0, max(0, (high.date() - low.date()).days)))
        minutes = self.rng.randrange(7 * 60, 18 * 60, 5)
        return datetime.combine(day, time(minutes // 60, minutes % 60), UTC)

    def make(self, kind: str, room: int) -> tuple[datetime, list[Resource]] | None:
        """Up to ``room`` records of ``kind`` and when they happened, or None if there is none to make."""
        makers: dict[str, Callable[[], tuple[datetime, list[Resource]] | None]] = {
            "laboratory": lambda: self._lab(),
            "vital-signs": lambda: self._vital(),
            "DiagnosticReport": lambda: self._report(room) if room >= 2 else None,
            "Condition": lambda: self._condition(),
            "MedicationRequest": lambda: self._medication(),
            "Immunization": lambda: self._immunization(),
            "AllergyIntolerance": lambda: self._allergy(),
        }
        return makers[kind]()

    def _draw(self, analyte: Analyte, spread: float) -> float | int:
        """A value around the analyte's range (widened by ``spread``), or in the range a problem sets."""
        low, high = self.ranges.get(analyte.loinc, (analyte.low * (1 - spread), analyte.high * (1 + spread)))
        return _number(self.rng.uniform(low, high), analyte.decimals)

    def _observation(self, when: datetime, category: str, code: Resource) -> Resource:
        return {
            "resourceType": "Observation",
            "id": _new_id(self.rng),
            "status": "final",
            "category": [_hl7("observation-category", category, OBSERVATION_CATEGORIES[category])],
            "code": code,
            "subject": self.subject,
            "effectiveDateTime": _iso(when),
        }

    def _lab_result(self, analyte: Analyte, when: datetime, issued: datetime) -> Resource:
        value = self._draw(analyte, spread=0.12)
        low, high = _number(analyte.low, analyte.decimals), _number(analyte.high, analyte.decimals)
        flag = ("L", "Low") if value < low else ("H", "High") if value > high else ("N", "Normal")
        return {
            **self._observation(when, "laboratory", _concept(LOINC, analyte.loinc, analyte.display)),
            "issued": _iso(issued),
            "valueQuantity": _quantity(value, analyte.unit),
            "interpretation": [_hl7("v3-ObservationInterpretation", *flag)],
            "referenceRange": [{"low": _quantity(low, analyte.unit), "high": _quantity(high, analyte.unit)}],
        }

    def _results_issued(self, when: datetime) -> datetime:
        return when + timedelta(minutes=self.rng.randrange(90, 30 * 60, 5))

    def _lab(self) -> tuple[datetime, list[Resource]]:
        when = self.moment()
        analyte = ANALYTES[self.rng.choice(STANDALONE_LABS)]
        return when, [self._lab_result(analyte, when, self._results_issued(when))]

    def _report(self, room: int) -> tuple[datetime, list[Resource]]:
        when = self.moment()
        issued = self._results_issued(when)
        panel = self.rng.choice(PANELS)
        results = [self._lab_result(ANALYTES[code], when, issued) for code in panel.results[: room - 1]]
        report = {
            "resourceType": "DiagnosticReport",
            "id": _new_id(self.rng),
            "status": "final",
            "category": [_hl7("v2-0074", "LAB", "Laboratory")],
            "code": _concept(LOINC, panel.loinc, panel.display),
            "subject": self.subject,
            "effectiveDateTime": _iso(when),
            "issued": _iso(issued),
            "result": [{"reference": f"Observation/{r['id']}", "display": r["code"]["text"]} for r in results],
        }
        return when, [report, *results]

    def _vital(self) -> tuple[datetime, list[Resource]]:
        when = self.moment()
        code = self.rng.choices(list(VITAL_WEIGHTS), list(VITAL_WEIGHTS.values()))[0]
        if code == BP_PANEL[0]:
            components = [
                {"code": _concept(LOINC, a.loinc, a.display), "valueQuantity": _quantity(self._draw(a, 0), a.unit)}
                for a in (VITALS["8480-6"], VITALS["8462-4"])
            ]
            return when, [
                {**self._observation(when, "vital-signs", _concept(LOINC, *BP_PANEL)), "component": components}
            ]
        analyte = VITALS[code]
        weight = self.weight_kg + self.rng.uniform(-2.5, 2.5)  # weight drifts a little from visit to visit
        if code == WEIGHT:
            value: float = weight
        elif code == HEIGHT:
            value = self.height_cm
        elif code == BMI:
            value = weight / (self.height_cm / 100) ** 2
        else:
            value = self._draw(analyte, 0)
        code_concept = _concept(LOINC, analyte.loinc, analyte.display)
        if code in PROFILE_CODES:
            generic, display = PROFILE_CODES[code]
            code_concept["coding"].insert(0, {"system": LOINC, "code": generic, "display": display})
        observation = self._observation(when, "vital-signs", code_concept)
        return when, [{**observation, "valueQuantity": _quantity(_number(value, analyte.decimals), analyte.unit)}]

    def _condition(self) -> tuple[datetime, list[Resource]]:
        condition: Resource = {"resourceType": "Condition", "id": _new_id(self.rng)}
        if self.unrecorded_problems and self.rng.random() < 0.7:
            # A chronic problem goes on the problem list once, recorded a little after its onset.
            problem = self.unrecorded_problems.pop(0)
            onset = self.problems[problem]
            recorded = min(onset + timedelta(days=self.rng.randint(0, 30)), AS_OF - timedelta(days=3))
            condition |= {
                "clinicalStatus": _hl7("condition-clinical", "active", "Active"),
                "category": [_hl7("condition-category", "problem-list-item", "Problem List Item")],
                "onsetDateTime": _iso(onset),
            }
        else:
            problem = self.rng.choice(ACUTE)
            onset = recorded = self.moment(high=AS_OF - timedelta(days=30))
            condition |= {
                "clinicalStatus": _hl7("condition-clinical", "resolved", "Resolved"),
                "category": [_hl7("condition-category", "encounter-diagnosis", "Encounter Diagnosis")],
                "onsetDateTime": _iso(onset),
                "abatementDateTime": _iso(onset + timedelta(days=self.rng.randint(7, 21))),
            }
        condition |= {
            "verificationStatus": _hl7("condition-ver-status", "confirmed", "Confirmed"),
            "code": _concept(SNOMED, problem.snomed, problem.display),
            "subject": self.subject,
            "recordedDate": _iso(recorded),
        }
        return onset, [condition]

    def _medication(self) -> tuple[datetime, list[Resource]]:
        if self.problems and self.rng.random() < 0.75:
            problem = self.rng.choice(list(self.problems))
            when = self.moment(low=self.problems[problem])
            # Chronic prescriptions are renewed: only the last year's are still active.
            status = "active" if AS_OF - when < timedelta(days=365) else "completed"
        else:
            problem, when, status = self.rng.choice(ACUTE), self.moment(), "completed"
        medication = self.rng.choice(problem.medications)
        dosage = {
            "sequence": 1,
            "text": medication.sig,
            "timing": {"repeat": {"frequency": medication.per_day, "period": 1, "periodUnit": "d"}},
            "asNeededBoolean": medication.as_needed,
        }
        return when, [
            {
                "resourceType": "MedicationRequest",
                "id": _new_id(self.rng),
                "status": status,
                "intent": "order",
                "medicationCodeableConcept": _concept(RXNORM, medication.rxnorm, medication.display),
                "subject": self.subject,
                "authoredOn": _iso(when),
                "reasonCode": [_concept(SNOMED, problem.snomed, problem.display)],
                "dosageInstruction": [dosage],
            }
        ]

    def _immunization(self) -> tuple[datetime, list[Resource]]:
        when = self.moment()
        age = (when.date() - self.birth).days // 365
        # Influenza (min age 1, since 2000) is always eligible, so the list is never empty.
        eligible = [v for v in VACCINES if age >= v.min_age and when.date() >= v.since]
        vaccine = self.rng.choices(eligible, [v.weight for v in eligible])[0]
        lot = "".join(self.rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(6))
        return when, [
            {
                "resourceType": "Immunization",
                "id": _new_id(self.rng),
                "status": "completed",
                "vaccineCode": _concept(CVX, vaccine.cvx, vaccine.display),
                "patient": self.subject,
                "occurrenceDateTime": _iso(when),
                "primarySource": True,
                "lotNumber": lot,
                "doseQuantity": _quantity(vaccine.dose_ml, "mL"),
            }
        ]

    def _allergy(self) -> tuple[datetime, list[Resource]] | None:
        if not self.unrecorded_allergies:
            return None  # each allergy is recorded once; the caller picks another kind
        allergy = self.unrecorded_allergies.pop()
        when = self.moment()
        return when, [
            {
                "resourceType": "AllergyIntolerance",
                "id": _new_id(self.rng),
                "clinicalStatus": _hl7("allergyintolerance-clinical", "active", "Active"),
                "verificationStatus": _hl7("allergyintolerance-verification", "confirmed", "Confirmed"),
                "type": "allergy",
                "category": [allergy.category],
                "criticality": allergy.criticality,
                "code": _concept(SNOMED, allergy.snomed, allergy.display),
                "patient": self.subject,
                "recordedDate": _iso(when),
                "reaction": [{"manifestation": [_concept(SNOMED, *allergy.reaction)], "severity": allergy.severity}],
            }
        ]
