/* A small SVG map of a household, its village centre and its matched jobs, drawn from coordinates
   (no tiles, no network): distances are to scale on a local flat projection, north is up. */
"use strict";

const MatchMap = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const SIZE = 320;
  const KM_LAT = 110.574;
  const KM_LON = 111.32;

  function s(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function niceStep(radiusKm) {
    for (const step of [0.5, 1, 2, 5, 10, 20, 50, 100, 200]) if (radiusKm / step <= 3.2) return step;
    return 500;
  }

  /**
   * home: {lat, lon}; village: {lat, lon} or null; jobs: [{n, lat, lon, tier, title}] (numbered).
   * Returns an <svg> with a title and a description; the caller adds the text list beside it.
   */
  function draw({ home, village, jobs, titleId, descId, title, desc }) {
    const cos = Math.cos((home.lat * Math.PI) / 180);
    const project = (p) => [(p.lon - home.lon) * KM_LON * cos, (p.lat - home.lat) * KM_LAT];
    const placed = jobs.filter((j) => j.lat !== null && j.lat !== undefined && j.lon !== null && j.lon !== undefined);
    const pts = placed.map(project);
    if (village) pts.push(project(village));
    const far = Math.max(1.5, ...pts.map(([x, y]) => Math.max(Math.abs(x), Math.abs(y))));
    const radius = far * 1.18;
    const scale = (SIZE / 2 - 14) / radius;
    const toPx = ([x, y]) => [SIZE / 2 + x * scale, SIZE / 2 - y * scale];

    const svg = s("svg", { viewBox: `0 0 ${SIZE} ${SIZE}`, role: "img", "aria-labelledby": `${titleId} ${descId}`,
                           class: "match-map", focusable: "false" });
    svg.append(s("title", { id: titleId }, title), s("desc", { id: descId }, desc));
    svg.append(s("rect", { x: 0, y: 0, width: SIZE, height: SIZE, class: "map-bg" }));

    const step = niceStep(radius);
    const labels = [];            // drawn last, over everything, and kept clear of markers
    for (let r = step; r <= radius * 1.42; r += step) {
      svg.append(s("circle", { cx: SIZE / 2, cy: SIZE / 2, r: r * scale, class: "map-ring" }));
      const ly = SIZE / 2 - r * scale;
      if (ly > 12) labels.push([SIZE / 2 + 3, ly - 3, M.num(r, step < 1 ? 1 : 0) + "公里"]);
    }
    // Scale bar and north.
    const bar = step * scale;
    svg.append(s("line", { x1: 12, y1: SIZE - 14, x2: 12 + bar, y2: SIZE - 14, class: "map-scale" }));
    svg.append(s("text", { x: 12, y: SIZE - 20, class: "map-ring-label" }, M.num(step, step < 1 ? 1 : 0) + "公里"));
    svg.append(s("text", { x: SIZE - 16, y: 20, class: "map-north", "text-anchor": "middle" }, "北"));
    svg.append(s("path", { d: `M ${SIZE - 16} 24 l -5 10 l 5 -3 l 5 3 z`, class: "map-north-arrow" }));

    // Markers never hide each other: one that would overlap an earlier one moves out along a spiral,
    // with a thin line back to its true place. The household is at the centre, above its village's mark.
    const [hx, hy] = [SIZE / 2, SIZE / 2];
    const taken = [[hx, hy]];
    // A ring's label (about 36 x 12 px from its start) is taken room too: markers move off it.
    for (const [x, y] of labels) taken.push([x + 10, y - 4], [x + 26, y - 4]);
    taken.push([22, SIZE - 22], [40, SIZE - 22], [SIZE - 16, 24]);      // the scale bar's label, north
    const free = (x, y) => taken.every(([a, b]) => Math.hypot(a - x, b - y) >= 21);
    function spot(x, y) {
      for (let ring = 1; ring <= 6 && !free(x, y); ring++) {
        for (let k = 0; k < 8; k++) {
          const a = (k * Math.PI) / 4 + ring * 0.4;
          const nx = x + Math.cos(a) * 21 * ring;
          const ny = y + Math.sin(a) * 21 * ring;
          if (nx > 10 && nx < SIZE - 10 && ny > 10 && ny < SIZE - 10 && free(nx, ny)) return [nx, ny];
        }
      }
      return [x, y];
    }
    if (village) {
      const [vx, vy] = toPx(project(village));
      svg.append(s("path", { d: `M ${vx} ${vy - 8} l 7 12 l -14 0 z`, class: "map-village" }));
      taken.push([vx, vy]);
    }
    svg.append(s("path", { d: `M ${hx - 8} ${hy + 7} v -9 l 8 -7 l 8 7 v 9 z`, class: "map-home" }));
    // Leader lines under every marker, so no line crosses a marker's number.
    const leaders = s("g", { class: "map-leaders" });
    const markers = s("g", {});
    svg.append(leaders, markers);
    for (const j of placed) {
      const [x0, y0] = toPx(project(j));
      const [x, y] = spot(x0, y0);
      const g = s("g", { class: "map-job " + (j.tier === "public_welfare" ? "welfare" : "market") });
      if (x !== x0 || y !== y0) {
        leaders.append(s("line", { x1: x0, y1: y0, x2: x, y2: y, class: "map-leader" }),
                       s("circle", { cx: x0, cy: y0, r: 2.5, class: "map-dot" }));
      }
      g.append(s("circle", { cx: x, cy: y, r: 10 }));
      g.append(s("text", { x, y: y + 4, "text-anchor": "middle" }, j.n));
      markers.append(g);
      taken.push([x, y]);
    }
    for (const [x, y, text] of labels) svg.append(s("text", { x, y, class: "map-ring-label halo" }, text));
    return svg;
  }

  return { draw };
})();
