"""Load and validate the policy TOML: every number of the rules lives there."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from matcher.config import DEFAULT_POLICY
from matcher.errors import PolicyError

DEMAND_LEVELS = ("light", "medium", "heavy")
FUNCTIONS = ("sight", "hearing", "speech", "literacy")
Demand = Literal["light", "medium", "heavy"]
Function = Literal["sight", "hearing", "speech", "literacy"]
DisabilityType = Literal["visual", "hearing", "speech", "physical", "intellectual", "mental", "multiple"]
Education = Literal["none", "primary", "junior", "senior", "vocational", "college"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Commute(_Strict):
    default_max_km: float = Field(gt=0, le=500)
    home_delivery_km: float = Field(gt=0, le=500)


class Fallback(_Strict):
    women_min_age: int = Field(ge=16, le=100)
    men_min_age: int = Field(ge=16, le=100)
    viability_threshold: float = Field(ge=0, le=1)
    failed_referrals: int = Field(2, ge=1, le=100)


class Literacy(_Strict):
    illiterate_education: list[Education]


class Capacity(_Strict):
    partial_max_demand: Demand


class DisabilityRule(_Strict):
    type: DisabilityType
    grades: list[int] = Field(min_length=1)
    loses: list[Function]
    max_demand: Demand

    @model_validator(mode="after")
    def _grades(self):
        bad = [g for g in self.grades if g not in (1, 2, 3, 4)]
        if bad:
            raise ValueError(f"grades must be 1-4, got {bad}")
        return self


class Subsidy(_Strict):
    workshop_factory: int = Field(ge=0)
    workshop_home: int = Field(ge=0)
    out_of_county: int = Field(ge=0)
    public_welfare: int = Field(ge=0)
    enterprise: int = Field(ge=0)


class Jobs(_Strict):
    min_monthly_wage: int = Field(ge=0)


class Business(_Strict):
    startup_subsidy_yuan: int = Field(ge=0)
    trading_months: int = Field(ge=1)
    guarantee_loan_yuan: int = Field(ge=0)


class Ranking(_Strict):
    few_viable_matches: int = Field(ge=0)
    suggest_skills: int = Field(ge=1, le=10)


class Gate(_Strict):
    auc_tolerance: float = Field(ge=0, le=1)
    precision_at_5_tolerance: float = Field(ge=0, le=1)
    max_group_ece: float = Field(gt=0, le=1)


class ModelPolicy(_Strict):
    monotonic: dict[str, Literal[-1, 0, 1]]
    min_referrals: int = Field(ge=1)
    holdout_fraction: float = Field(gt=0, lt=1)


class Policy(_Strict):
    commute: Commute
    fallback: Fallback
    literacy: Literacy
    capacity: Capacity
    disability: list[DisabilityRule]
    subsidy: Subsidy
    jobs: Jobs
    business: Business
    ranking: Ranking
    gate: Gate
    model: ModelPolicy
    source: str = ""

    @model_validator(mode="after")
    def _no_overlap(self):
        seen = set()
        for rule in self.disability:
            for g in rule.grades:
                if (rule.type, g) in seen:
                    raise ValueError(f"disability {rule.type} grade {g} is listed twice")
                seen.add((rule.type, g))
        return self

    def disability_rule(self, kind: str, grade: int | None) -> DisabilityRule | None:
        for rule in self.disability:
            if rule.type == kind and grade in rule.grades:
                return rule
        return None


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file (default: the one shipped with the package)."""
    path = Path(path) if path else DEFAULT_POLICY
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy file {path} is not valid TOML: {exc}") from None
    try:
        return Policy(**raw, source=str(path))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PolicyError(f"policy file {path}: {where}: {first['msg']}", field=where) from None
