"""Occupation x sex x age-band mix of U.S. employed persons, shipped as data (no download at run time).

Source: U.S. Bureau of Labor Statistics, Current Population Survey, 2023 annual averages —
Table 11 ("Employed persons by detailed occupation, sex, race, and Hispanic or Latino ethnicity"),
Table 11b ("Employed persons by detailed occupation and age") and Table 39 ("Median weekly earnings
of full-time wage and salary workers by detailed occupation and sex"), aggregated to the 22 SOC
major groups. Figures are rounded transcriptions (employment to ~100k, shares to ~1 point,
earnings to ~10 $): they set realistic proportions for persona sampling, not official estimates.
Within an occupation, sex and age are sampled independently (the tables give the two margins).
"""

from __future__ import annotations

from typing import NamedTuple

AGE_BANDS: tuple[tuple[int, int], ...] = ((16, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 74))


class OccupationGroup(NamedTuple):
    name: str  # singular role used in persona text
    employed_k: float  # employed persons, thousands
    pct_female: float  # percent women
    median_weekly: float  # median weekly earnings, full-time wage and salary, dollars
    age_pct: tuple[float, ...]  # percent in AGE_BANDS (16-24, 25-34, 35-44, 45-54, 55-64, 65+)


OCCUPATIONS: tuple[OccupationGroup, ...] = (
    OccupationGroup("manager", 19_800, 41, 1_740, (3, 17, 25, 25, 21, 9)),
    OccupationGroup("business or financial specialist", 9_800, 56, 1_460, (6, 25, 24, 20, 17, 8)),
    OccupationGroup("software developer or other computer specialist", 6_200, 26, 1_800, (6, 30, 27, 20, 13, 4)),
    OccupationGroup("engineer or architect", 3_400, 17, 1_700, (7, 26, 24, 20, 17, 6)),
    OccupationGroup("scientist", 1_900, 48, 1_500, (9, 28, 23, 18, 15, 7)),
    OccupationGroup("social worker or counselor", 2_900, 67, 1_060, (7, 22, 22, 20, 19, 10)),
    OccupationGroup("lawyer or legal worker", 1_900, 55, 1_600, (4, 20, 24, 21, 19, 12)),
    OccupationGroup("teacher or librarian", 9_300, 73, 1_150, (10, 20, 23, 21, 17, 9)),
    OccupationGroup("artist, designer or media worker", 3_500, 48, 1_200, (14, 26, 21, 16, 14, 9)),
    OccupationGroup("nurse, physician or other health practitioner", 10_100, 75, 1_350, (5, 26, 25, 20, 17, 7)),
    OccupationGroup("health aide or assistant", 4_700, 84, 720, (17, 26, 20, 17, 14, 6)),
    OccupationGroup("police officer, firefighter or guard", 3_100, 23, 1_050, (12, 24, 22, 20, 15, 7)),
    OccupationGroup("cook, server or food worker", 8_300, 55, 620, (38, 24, 14, 11, 9, 4)),
    OccupationGroup("cleaner, janitor or groundskeeper", 5_700, 40, 680, (11, 19, 20, 21, 19, 10)),
    OccupationGroup("personal care or service worker", 4_400, 76, 700, (20, 22, 19, 16, 14, 9)),
    OccupationGroup("sales worker", 15_100, 49, 950, (21, 20, 18, 16, 15, 10)),
    OccupationGroup("office or administrative worker", 16_400, 71, 880, (13, 20, 19, 19, 19, 10)),
    OccupationGroup("farm, fishing or forestry worker", 1_000, 25, 680, (18, 20, 18, 17, 16, 11)),
    OccupationGroup("construction worker", 8_600, 4.5, 1_000, (11, 25, 23, 20, 16, 5)),
    OccupationGroup("mechanic or repair technician", 4_800, 4, 1_080, (10, 23, 22, 22, 18, 5)),
    OccupationGroup("production worker", 8_100, 29, 880, (10, 22, 21, 21, 19, 7)),
    OccupationGroup("driver or material mover", 11_700, 21, 800, (16, 22, 19, 18, 17, 8)),
)
