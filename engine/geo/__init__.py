"""Geometry of the grid and of what is found on it (卫片图斑, survey findings).

- :mod:`engine.geo.shapes` — GeoJSON in, checked (closed rings, lng/lat ranges,
  valid polygons), shapely geometry out; every refusal names where it is;
- :mod:`engine.geo.area` — areas in m² on the ellipsoid (pyproj's geodesic), not
  in square degrees;
- :mod:`engine.geo.locate` — which unit a point or polygon belongs to: the lowest
  unit whose boundary contains it, else the one it overlaps most, through an
  STRtree so a province's villages are searched in milliseconds.

Coordinates are longitude/latitude on WGS-84 or CGCS2000 (China's datum; the two
differ by centimetres, far below what a satellite spot resolves).
"""
