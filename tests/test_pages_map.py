"""Maps on the duty pages, drawn on the server as SVG (:mod:`engine.pages.maps`).

First the drawing itself: every vertex inside the viewBox, the aspect ratio of a
shape kept (longitudes corrected by cos(latitude)), a point case as a circle linking
to its page, names escaped, nothing to draw as no map.  Then the pages over HTTP on
both backends: the case page's 位置 map with the case's shape over its unit's (or
nearest ancestor's) boundary, no section without anything to draw, and the board's
map holding only the viewer's units and cases.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.api.app import create_api
from engine.app import App
from engine.clock import FixedClock
from engine.pages.board import band, case_marks
from engine.pages.maps import HEIGHT, WIDTH, CaseMark, UnitArea, svg_map
from tests.support.databases import Database
from tests.support.farmland import GRID_FILE, REPORTER, farmland_app, open_case
from tests.support.geometry import square
from tests.support.pages import PASSWORD, signed_in
from tests.support.properties import examples
from tests.support.serving import serving

SPOT_FILE = Path(__file__).resolve().parent.parent / "workflows" / "satellite_spot.yaml"
ISSUER = "p-ddk-office1"  # issues spots anywhere in the district
VILLAGE = "p-bq-xh-leader"  # 新华村 网格长 (and a member of 八桥镇's grid)
TOWN_OFFICE = "p-bq-office"  # 八桥镇 专班办公室: 八桥镇 only
POINTS = re.compile(r'points="([^"]+)"')
CIRCLE = re.compile(r'<circle cx="([\d.]+)" cy="([\d.]+)"')


def spot(app: App, unit: str, outline: dict[str, Any], number: str) -> str:
    """A satellite spot issued on *unit* with *outline*; its id."""
    data = {
        "spot_no": number,
        "outline": outline,
        "area_m2": 900,
        "land_type": "一般耕地",
        "batch": "2026-09",
        "verify_by": "2026-09-30",
    }
    return app.cases.create_case("satellite_spot", unit, ISSUER, data).id


def vertices(svg: str) -> list[tuple[float, float]]:
    return [
        (float(x), float(y))
        for points in POINTS.findall(svg)
        for x, y in (pair.split(",") for pair in points.split())
    ]


def svg_of(page: httpx.Response, section: str) -> str:
    """The <svg> inside the section with id *section* of *page* ('' when there is none)."""
    assert page.status_code == 200, page.text
    found = re.search(rf'<section[^>]*id="{section}".*?(<svg.*?</svg>)', page.text, re.S)
    return found.group(1) if found else ""


# -- the drawing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("west", "south", "wide", "high"),
    [(106.46, 29.46, 0.02, 0.04), (106.40, 29.42, 0.12, 0.01), (-70.0, -55.0, 0.5, 0.5)],
)
def test_a_shape_fits_the_viewbox_keeping_its_aspect_ratio(
    west: float, south: float, wide: float, high: float
) -> None:
    ring = [[west, south], [west + wide, south], [west + wide, south + high], [west, south + high]]
    outline = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    svg = svg_map([UnitArea("u", "单元", outline)], [])
    assert svg is not None and f'viewBox="0 0 {WIDTH:g} {HEIGHT:g}"' in svg
    assert 'width="100%"' in svg and "style=" not in svg and "<script" not in svg
    drawn = vertices(svg)
    xs, ys = [x for x, _ in drawn], [y for _, y in drawn]
    assert all(0 <= x <= WIDTH for x in xs) and all(0 <= y <= HEIGHT for y in ys)
    ground = wide * math.cos(math.radians(south + high / 2)) / high  # east-west over north-south
    assert (max(xs) - min(xs)) / (max(ys) - min(ys)) == pytest.approx(ground, rel=0.01)
    # fitted: it fills the viewBox one way or the other, less the margins
    assert max(max(xs) - min(xs) - WIDTH, max(ys) - min(ys) - HEIGHT) > -60


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=73.0, max_value=135.0),  # China, roughly, and then some
            st.floats(min_value=-60.0, max_value=60.0),
            st.floats(min_value=0.0001, max_value=0.5),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_whatever_is_drawn_stays_inside_the_viewbox(
    squares: list[tuple[float, float, float]],
) -> None:
    units = [
        UnitArea(f"u{i}", "单元", square(x, y, size)) for i, (x, y, size) in enumerate(squares)
    ]
    cases = [CaseMark(f"C{i}", [x, y]) for i, (x, y, _) in enumerate(squares)]
    svg = svg_map(units, cases)
    assert svg is not None
    drawn = vertices(svg) + [(float(x), float(y)) for x, y in CIRCLE.findall(svg)]
    assert drawn and all(0 <= x <= WIDTH and 0 <= y <= HEIGHT for x, y in drawn)


def test_north_is_up_and_east_is_right() -> None:
    svg = svg_map(
        [UnitArea("u", "单元", square(106.46, 29.46, 0.02))],
        [
            CaseMark("NE", {"type": "Point", "coordinates": [106.479, 29.479]}),
            CaseMark("SW", {"type": "Point", "coordinates": [106.461, 29.461]}),
        ],
    )
    assert svg is not None
    (ne_x, ne_y), (sw_x, sw_y) = [(float(x), float(y)) for x, y in CIRCLE.findall(svg)]
    assert ne_x > sw_x and ne_y < sw_y


def test_a_point_case_is_a_circle_linking_to_its_case() -> None:
    svg = svg_map([], [CaseMark("C20260918-0007", shapely.Point(106.47, 29.47), "overdue")])
    assert svg is not None
    link = re.search(r'<a href="/ui/cases/C20260918-0007"[^>]*>(.*?)</a>', svg)
    assert link is not None, svg
    assert 'class="case overdue"' in link.group(0)
    assert link.group(1).startswith("<title>C20260918-0007</title><circle ")
    x, y = map(float, CIRCLE.findall(svg)[0])  # alone: in the middle of the map
    assert x == pytest.approx(WIDTH / 2, abs=0.1) and y == pytest.approx(HEIGHT / 2, abs=0.1)


def test_an_outline_case_is_a_polygon_and_a_tiny_one_is_marked_too() -> None:
    village = UnitArea("v", "村", square(106.46, 29.46, 0.02))
    big = svg_map([village], [CaseMark("BIG", square(106.465, 29.465, 0.005))])
    tiny = svg_map([village], [CaseMark("TINY", square(106.47, 29.47, 0.0001))])
    assert big is not None and tiny is not None
    assert re.search(r'data-case="BIG"><title>BIG</title><polygon [^>]*/></a>', big)
    assert re.search(r'data-case="TINY"><title>TINY</title><polygon [^>]*/><circle ', tiny)


def test_names_and_ids_are_escaped() -> None:
    svg = svg_map(
        [UnitArea('x"><script>', "<script>alert(1)</script>", square(106.46, 29.46, 0.02))],
        [CaseMark('C"1<b>', {"type": "Point", "coordinates": [106.47, 29.47]})],
    )
    assert svg is not None
    assert "<script" not in svg and "<b>" not in svg
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>" in svg
    assert 'href="/ui/cases/C%221%3Cb%3E"' in svg and "<title>C&#34;1&lt;b&gt;</title>" in svg


def test_nothing_to_draw_is_no_map() -> None:
    broken = {"type": "Polygon", "coordinates": [[[106.4, 29.4], [106.5, 29.4]]]}
    assert svg_map([], []) is None
    assert svg_map([UnitArea("u", "单元", broken)], [CaseMark("C", [200.0, 100.0])]) is None


def test_the_overdue_bands() -> None:
    assert [band(n) for n in (0, 1, 4, 5, 50)] == ["none", "some", "some", "many", "many"]


def test_the_boards_case_marks_are_capped_and_say_so() -> None:
    point = {"type": "Point", "coordinates": [106.47, 29.47]}
    found: list[tuple[str, dict[str, Any]]] = [
        ("C1", {"address": "无坐标"}),
        ("C2", {"outline": square(106.47, 29.47, 0.001), "check_position": point}),
        ("C3", {"location": [106.48, 29.48]}),
        ("C4", {"check_position": point}),
    ]
    marks, capped = case_marks(found, late={"C3"}, limit=2)
    assert capped and [(m.case_id, m.css) for m in marks] == [("C2", "open"), ("C3", "overdue")]
    assert getattr(marks[0].shape, "geom_type", None) == "Polygon"  # the outline, not the check
    marks, capped = case_marks(found, late=set(), limit=3)
    assert not capped and [m.case_id for m in marks] == ["C2", "C3", "C4"]
    assert case_marks(found[:3], late=set(), limit=2) == (case_marks(found, set(), 2)[0], False)


# -- the pages ---------------------------------------------------------------------


@contextmanager
def serve(app: App, *people: str) -> Iterator[str]:
    """*app* served on a loopback port, *people* with the test password; its base URL."""
    for person in people:
        app.credentials.set_password(person, PASSWORD)
    with serving(create_api(app)) as base:
        yield base


@pytest.fixture
def site(app: App) -> Iterator[str]:
    app.catalog.register_file(SPOT_FILE)
    with serve(app, VILLAGE, TOWN_OFFICE, REPORTER, ISSUER) as base:
        yield base


@pytest.fixture
def bare_app(database: Database, clock: FixedClock, tmp_path: Path) -> Iterator[App]:
    """The farmland App on the demo grid without its boundaries file."""
    text = GRID_FILE.read_text("utf-8")
    assert "\nboundaries: dadukou-boundaries.geojson\n" in text
    grid = tmp_path / "bare.yaml"
    grid.write_text(text.replace("\nboundaries: dadukou-boundaries.geojson\n", "\n"), "utf-8")
    application = farmland_app(database.url, clock, grid=grid)
    try:
        yield application
    finally:
        application.close()


def test_the_case_page_draws_the_spot_over_its_village(app: App, site: str) -> None:
    case = spot(app, "ddk-bq-xh", square(106.4700, 29.4800, 0.0003), "S-1")
    with signed_in(site, VILLAGE) as village:
        shown = village.get(f"/ui/cases/{case}")
    svg = svg_of(shown, "place")
    assert '<g class="unit" data-unit="ddk-bq-xh"><title>新华村</title><polygon' in svg
    assert re.search(rf'<a href="/ui/cases/{case}"[^>]*><title>{case}</title><polygon', svg)
    assert svg.count("data-unit=") == 1 and svg.count("data-case=") == 1
    # the outline's coordinates are not printed in the facts: the map shows it
    assert "<dt>图斑范围</dt><dd>见位置图</dd>" in shown.text and "coordinates" not in shown.text


def test_a_case_without_a_shape_of_a_group_shows_its_village(app: App, site: str) -> None:
    """A group has no boundary in the demo grid: its village's is drawn, with the
    farmland case's ``location`` point."""
    pinned = open_case(app, location=[106.4705, 29.4805])
    unpinned = open_case(app)
    with signed_in(site, REPORTER) as member:
        svg = svg_of(member.get(f"/ui/cases/{pinned}"), "place")
        bare = svg_of(member.get(f"/ui/cases/{unpinned}"), "place")
    assert 'data-unit="ddk-bq-xh"' in svg
    assert re.search(rf'data-case="{pinned}"><title>{pinned}</title><circle ', svg)
    assert 'data-unit="ddk-bq-xh"' in bare and "data-case=" not in bare


def test_no_shape_and_no_boundary_is_no_map_section(bare_app: App) -> None:
    pinned = open_case(bare_app, location=[106.4705, 29.4805])
    unpinned = open_case(bare_app)
    with serve(bare_app, REPORTER) as base, signed_in(base, REPORTER) as member:
        nothing = member.get(f"/ui/cases/{unpinned}")
        point = svg_of(member.get(f"/ui/cases/{pinned}"), "place")
    assert nothing.status_code == 200 and unpinned in nothing.text
    assert 'id="place"' not in nothing.text and "<svg" not in nothing.text
    assert "data-unit=" not in point and f'data-case="{pinned}"' in point  # the point alone


def test_the_board_map_draws_only_the_viewers_units_and_cases(
    app: App, site: str, clock: FixedClock
) -> None:
    late = open_case(app, location=[106.4705, 29.4805])  # 新华村一组: 2 h to stop it
    ours = spot(app, "ddk-bq-sl", square(106.4900, 29.4700, 0.0003), "S-OURS")
    theirs = spot(app, "ddk-js-bh", square(106.4750, 29.4400, 0.0005), "S-THEIRS")  # 建胜镇
    clock.advance(timedelta(hours=3))
    with signed_in(site, TOWN_OFFICE) as town:
        top = svg_of(town.get("/ui/board"), "board-map")
        villages = svg_of(town.get("/ui/board?unit=ddk-bq"), "board-map")
        one = svg_of(town.get("/ui/board?unit=ddk-bq-sl"), "board-map")  # groups: no boundaries
        spots_only = svg_of(town.get("/ui/board?unit=ddk-bq&workflow=satellite_spot"), "board-map")
    with signed_in(site, ISSUER) as district:
        towns = district.get("/ui/board?unit=ddk")
    assert re.findall(r'data-unit="([\w-]+)"', top) == ["ddk-bq"]
    assert '<a href="/ui/board?unit=ddk-bq"><g class="unit some" data-unit="ddk-bq">' in top
    bands = {code: css for css, code in re.findall(r'"unit (\w+)" data-unit="([\w-]+)"', villages)}
    assert bands == {"ddk-bq-xh": "some", "ddk-bq-sl": "none", "ddk-bq-fs": "none"}
    for svg in (top, villages):
        assert f'class="case overdue" data-case="{late}"' in svg
        assert f'class="case open" data-case="{ours}"' in svg
        assert theirs not in svg and "ddk-js" not in svg
    assert one == ""
    assert f'data-case="{ours}"' in spots_only and late not in spots_only  # the filter holds
    assert '<a href="/ui/board?workflow=satellite_spot&amp;unit=ddk-bq-xh">' in spots_only
    drawn = svg_of(towns, "board-map")  # the district office sees every town
    assert 'data-unit="ddk-js"' in drawn and f'data-case="{theirs}"' in drawn
