// shadowgate access graph. Vanilla JS, no dependencies, no network except, on a live
// page, the report URL and the suggest endpoint. Everything is laid out
// deterministically: the same report draws the same picture.
(function () {
  'use strict';

  const STATUSES = ['would-drop', 'denied', 'covered', 'open'];
  // The worst status of an aggregated edge wins, as in the report.
  const RANK = { open: 0, covered: 1, denied: 2, 'would-drop': 3 };
  const COLOR = { covered: '#2b8a3e', 'would-drop': '#e03131', denied: '#868e96', open: '#1c7ed6' };
  const LABEL = { covered: 'covered', 'would-drop': 'would drop', denied: 'dropped today', open: 'open' };
  const TITLE = {
    covered: 'admitted under enforcement by a rule compiled from ClientIntents or an existing policy',
    'would-drop': 'allowed today, dropped once the namespace enforces',
    denied: 'already dropped by the current policies',
    open: 'nothing isolates either side, even under enforcement'
  };
  const KIND_SHORT = {
    Deployment: 'deploy', StatefulSet: 'sts', DaemonSet: 'ds', CronJob: 'cronjob', Job: 'job',
    Pod: 'pod', ReplicaSet: 'rs', External: 'external', Node: 'node', CrossNode: 'node'
  };
  // Geometry, in SVG units.
  const G = {
    nodeW: 160, nodeH: 28, gapX: 14, gapY: 26, pad: 12, header: 26, perLine: 5,
    rankGap: 70, groupGapX: 28, groupGapY: 26, bandGap: 140, minRowW: 900, collapsedW: 196, collapsedH: 54
  };
  // Namespaces with more workloads than this start collapsed; above the second number
  // every namespace does, so that 500 workloads open as a map of namespaces.
  const COLLAPSE_NAMESPACE_AT = 12;
  const COLLAPSE_ALL_AT = 80;
  const DETAIL_ROWS = 60;
  const BUSY_EDGES = 150;
  const SVGNS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers: text always goes through textContent, never markup. ----
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }
  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  function append(e, ...children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }

  // ---- Identities, as suggest.EdgeKey writes them. ----
  function peerId(p) {
    if (p.kind === 'External') return 'x:' + (p.cidr || '');
    if (p.kind === 'Node') return 'h:' + (p.node || '');
    if (p.kind === 'CrossNode') return 'c:' + (p.node || '');
    return 'w:' + (p.namespace || '') + '/' + (p.workload || '') + '/' + (p.kind || '');
  }
  function edgeKey(e) {
    return peerId(e.source) + '>' + peerId(e.destination) + ':' + (e.protocol || '') + '/' + (e.port || 0);
  }
  function groupIdOf(p) {
    if (p.kind === 'External') return 'ext';
    if (p.kind === 'Node' || p.kind === 'CrossNode') return 'hosts';
    return 'ns:' + (p.namespace || '');
  }
  function peerName(p) {
    if (p.kind === 'External') return 'external ' + (p.cidr || '(unknown)');
    if (p.kind === 'Node') return p.node ? 'node ' + p.node : 'node';
    if (p.kind === 'CrossNode') return (p.node ? 'node ' + p.node : 'another node') + ' (cross-node)';
    return (p.namespace || '') + '/' + (p.workload || '');
  }
  function portText(e) { return e.port ? (e.protocol || '') + '/' + e.port : 'any port'; }
  function fmtTime(t) {
    if (!t || String(t).startsWith('0001-')) return '—';
    return String(t).replace('T', ' ').replace(/\.\d+/, '');
  }
  function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many); }

  // ---- State ----
  const raw = JSON.parse($('sg-data').textContent);
  const state = {
    data: raw,
    model: null,
    layout: null,
    nsFilter: '',
    search: '',
    statuses: Object.fromEntries(STATUSES.map((s) => [s, true])),
    collapsed: new Map(), // group id -> bool, what the user chose
    selected: null, // { type: 'edge' | 'node', id }
    sort: { key: 'count', dir: -1 },
    openFix: new Set(), // uncovered rows showing their fix
    view: { x: 0, y: 0, k: 1 },
    paused: false,
    timer: null,
    lastUpdate: null,
    elements: new Map() // data-id -> drawn element
  };

  // ---- Model: nodes, groups and edges of the report. ----
  function buildModel(data) {
    const report = data.report || {};
    const uncovered = report.uncovered || [];
    let edges = report.edges;
    if (!edges || edges.length === 0) {
      // A report without the edges list (an older producer): the uncovered ones at least.
      edges = uncovered.map((e) => Object.assign({}, e, { status: 'would-drop' }));
    }
    const uncoveredByKey = new Map(uncovered.map((e) => [edgeKey(e), e]));
    const sugByEdge = new Map();
    const sugByClient = new Map();
    (data.suggestions || []).forEach((s) => {
      s.edges.forEach((k) => {
        if (!sugByEdge.has(k)) sugByEdge.set(k, []);
        sugByEdge.get(k).push(s);
      });
      sugByClient.set(s.client, s);
    });
    const noteByEdge = new Map((data.notes || []).map((n) => [n.edge, n]));

    const nodes = new Map();
    const groups = new Map();
    function group(p) {
      const id = groupIdOf(p);
      let g = groups.get(id);
      if (!g) {
        const kind = id === 'ext' ? 'ext' : id === 'hosts' ? 'hosts' : 'ns';
        const name = kind === 'ns' ? p.namespace || '' : kind === 'ext' ? 'outside the cluster' : 'nodes';
        g = { id, kind, name, nodes: [] };
        groups.set(id, g);
      }
      return g;
    }
    function node(p) {
      const id = peerId(p);
      let n = nodes.get(id);
      if (!n) {
        const g = group(p);
        const kind = p.kind === 'External' ? 'external' : p.kind === 'Node' || p.kind === 'CrossNode' ? 'host' : 'workload';
        const label = kind === 'external' ? p.cidr || '(unknown)' : kind === 'host' ? (p.node || 'node') + (p.kind === 'CrossNode' ? ' (cross-node)' : '') : p.workload || '';
        n = { id, peer: p, group: g.id, kind, label, name: peerName(p), out: [], in: [], uncovered: false };
        n.search = (n.name + ' ' + (p.kind || '') + ' ' + (p.namespace || '')).toLowerCase();
        nodes.set(id, n);
        g.nodes.push(n);
      }
      return n;
    }
    const recs = edges.map((e) => {
      const key = edgeKey(e);
      const status = RANK[e.status] === undefined ? 'open' : e.status;
      const r = {
        key, e, status, src: node(e.source), dst: node(e.destination),
        uncovered: uncoveredByKey.get(key) || (status === 'would-drop' ? e : null),
        suggestions: sugByEdge.get(key) || [], note: noteByEdge.get(key) || null
      };
      r.src.out.push(r);
      r.dst.in.push(r);
      if (status === 'would-drop') { r.src.uncovered = true; r.dst.uncovered = true; }
      return r;
    });
    const byKey = new Map(recs.map((r) => [r.key, r]));
    // Uncovered edges missing from the edges list still belong in the table.
    const table = uncovered.map((e) => byKey.get(edgeKey(e)) || {
      key: edgeKey(e), e, status: 'would-drop', src: node(e.source), dst: node(e.destination), uncovered: e,
      suggestions: sugByEdge.get(edgeKey(e)) || [], note: noteByEdge.get(edgeKey(e)) || null
    });
    if (uncovered.length === 0) recs.filter((r) => r.status === 'would-drop').forEach((r) => table.push(r));
    for (const g of groups.values()) g.nodes.sort((a, b) => cmp(a.id, b.id));

    const nsInfo = new Map((report.namespaces || []).map((n) => [n.namespace, n]));
    // A daemon's /report carries the gate results and soak summaries beside the namespaces.
    const gates = new Map((Array.isArray(report.gates) ? report.gates : []).filter((g) => g && g.namespace).map((g) => [g.namespace, g]));
    const soaks = new Map((Array.isArray(report.soak) ? report.soak : []).filter((x) => x && x.namespace).map((x) => [x.namespace, x]));
    const enforced = new Set(report.enforced || []);
    const namespaces = new Set([...nsInfo.keys(), ...enforced]);
    for (const g of groups.values()) if (g.kind === 'ns') namespaces.add(g.name);
    for (const ns of [...gates.keys(), ...soaks.keys()]) namespaces.add(ns);
    return {
      report, recs, byKey, nodes, groups, table, nsInfo, gates, soaks, enforced, sugByClient,
      namespaces: [...namespaces].sort(cmp),
      workloads: [...nodes.values()].filter((n) => n.kind === 'workload').length
    };
  }

  function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }

  // ---- Filters ----
  function edgeVisible(r) {
    if (!state.statuses[r.status]) return false;
    if (state.nsFilter) {
      const g = 'ns:' + state.nsFilter;
      if (r.src.group !== g && r.dst.group !== g) return false;
    }
    return true;
  }
  function nodeMatches(n) { return state.search !== '' && n.search.includes(state.search); }

  function isCollapsed(g, visibleCount, totalVisible) {
    if (state.collapsed.has(g.id)) return state.collapsed.get(g.id);
    if (state.nsFilter && g.id === 'ns:' + state.nsFilter) return false;
    if (state.search && g.visible.some(nodeMatches)) return false;
    return visibleCount > COLLAPSE_NAMESPACE_AT || (totalVisible > COLLAPSE_ALL_AT && visibleCount > 1);
  }

  // ---- Layout ----
  // layers assigns each id a layer by longest path over the edges, after dropping the
  // edges that close a cycle (found by a depth-first search in sorted order) and those
  // into the fixed ids, which stay in layer 0.
  function layers(ids, edges, fixed) {
    const adj = new Map(ids.map((id) => [id, []]));
    const indeg = new Map(ids.map((id) => [id, 0]));
    for (const [a, b] of edges) if (a !== b && adj.has(a) && adj.has(b) && !fixed.has(b)) adj.get(a).push(b);
    for (const l of adj.values()) l.sort(cmp);
    for (const l of adj.values()) for (const b of l) indeg.set(b, indeg.get(b) + 1);
    const mark = new Map();
    const kept = new Map(ids.map((id) => [id, []]));
    const roots = [...ids.filter((id) => fixed.has(id)), ...ids.filter((id) => !fixed.has(id) && indeg.get(id) === 0), ...ids];
    const stack = [];
    for (const root of roots) {
      if (mark.has(root)) continue;
      // Iterative DFS: namespaces of hundreds of workloads must not hit the call stack.
      mark.set(root, 1);
      stack.push([root, 0]);
      while (stack.length) {
        const top = stack[stack.length - 1];
        const [v, i] = top;
        const out = adj.get(v);
        if (i >= out.length) { mark.set(v, 2); stack.pop(); continue; }
        top[1]++;
        const w = out[i];
        const m = mark.get(w);
        if (m === 1) continue; // closes a cycle
        kept.get(v).push(w);
        if (!m) { mark.set(w, 1); stack.push([w, 0]); }
      }
    }
    const layer = new Map(ids.map((id) => [id, 0]));
    const deg = new Map(ids.map((id) => [id, 0]));
    for (const l of kept.values()) for (const w of l) deg.set(w, deg.get(w) + 1);
    const queue = ids.filter((id) => deg.get(id) === 0);
    while (queue.length) {
      const v = queue.shift();
      for (const w of kept.get(v)) {
        layer.set(w, Math.max(layer.get(w), layer.get(v) + 1));
        deg.set(w, deg.get(w) - 1);
        if (deg.get(w) === 0) queue.push(w);
      }
    }
    return layer;
  }

  function mean(xs) { return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null; }
  function byBarycenter(items, center, name) {
    const keyed = items.map((it) => ({ it, c: center(it), n: name(it) }));
    keyed.sort((a, b) => {
      if (a.c === null && b.c === null) return cmp(a.n, b.n);
      if (a.c === null) return 1;
      if (b.c === null) return -1;
      return a.c - b.c || cmp(a.n, b.n);
    });
    return keyed.map((k) => k.it);
  }

  // computeLayout flows top to bottom: namespaces are ranked by the calls between them
  // (callers above callees, the outside world and the nodes on top), each rank a row of
  // namespace boxes wrapped at a width that keeps the picture near the screen's shape;
  // inside a box the workloads are ranked the same way, one line per rank.
  function computeLayout(model) {
    const visible = model.recs.filter(edgeVisible);
    const vnodes = new Set();
    visible.forEach((r) => { vnodes.add(r.src); vnodes.add(r.dst); });
    const groups = [];
    for (const g of [...model.groups.values()].sort((a, b) => cmp(groupOrder(a), groupOrder(b)))) {
      g.visible = g.nodes.filter((n) => vnodes.has(n));
      if (g.visible.length) groups.push(g);
    }
    const totalVisible = [...vnodes].filter((n) => n.kind === 'workload').length;
    groups.forEach((g) => { g.isCollapsed = isCollapsed(g, g.visible.length, totalVisible); });
    const disp = (n) => (model.groups.get(n.group).isCollapsed ? 'g:' + n.group : n.id);

    // Display edges: one per pair of drawn boxes, with every report edge behind it.
    const dedges = new Map();
    const internal = new Map(); // collapsed group -> edges inside it
    for (const r of visible) {
      const a = disp(r.src), b = disp(r.dst);
      if (a === b && a.startsWith('g:')) {
        if (!internal.has(a)) internal.set(a, []);
        internal.get(a).push(r);
        continue;
      }
      const id = a + '>' + b;
      let d = dedges.get(id);
      if (!d) { d = { id, src: a, dst: b, recs: [], status: 'open', count: 0 }; dedges.set(id, d); }
      d.recs.push(r);
      d.count += r.e.count || 0;
      if (d.recs.length === 1 || RANK[r.status] > RANK[d.status]) d.status = r.status;
    }
    const dlist = [...dedges.values()].sort((x, y) => cmp(x.id, y.id));

    // Ranks of groups.
    const gid = (box) => (box.startsWith('g:') ? box.slice(2) : model.nodes.get(box).group);
    const gEdges = [];
    for (const d of dlist) if (gid(d.src) !== gid(d.dst)) gEdges.push([gid(d.src), gid(d.dst)]);
    const fixed = new Set(groups.filter((g) => g.kind !== 'ns').map((g) => g.id));
    const gLayer = layers(groups.map((g) => g.id), gEdges, fixed);
    const ranks = [];
    for (const g of groups) {
      const l = gLayer.get(g.id);
      (ranks[l] = ranks[l] || []).push(g);
    }

    const pos = new Map(); // box id -> {x, y, w, h}
    const preds = new Map(); // box id -> box ids with an edge into it
    for (const d of dlist) {
      if (!preds.has(d.dst)) preds.set(d.dst, []);
      preds.get(d.dst).push(d.src);
    }
    const placedX = (ids) => mean(ids.filter((i) => pos.has(i)).map((i) => pos.get(i).x + pos.get(i).w / 2));

    // Size every group before placing any, to choose the wrap width.
    const shapes = new Map();
    let area = 0, widest = 0;
    for (const g of groups) {
      let shape;
      if (g.isCollapsed) {
        shape = { w: G.collapsedW, h: G.collapsedH, lines: [] };
      } else {
        const ids = g.visible.map((n) => n.id);
        const inside = new Set(ids);
        const within = dlist.filter((d) => inside.has(d.src) && inside.has(d.dst)).map((d) => [d.src, d.dst]);
        const nLayer = layers(ids, within, new Set());
        const subs = [];
        for (const n of g.visible) {
          const l = nLayer.get(n.id);
          (subs[l] = subs[l] || []).push(n);
        }
        // One line per rank, wrapped so that a namespace of many peers stays compact.
        const lines = [];
        for (const sub of subs.filter(Boolean)) {
          for (let i = 0; i < sub.length; i += G.perLine) lines.push({ nodes: sub.slice(i, i + G.perLine), rankStart: i === 0 });
        }
        const cols = Math.max(...lines.map((l) => l.nodes.length));
        shape = {
          w: G.pad * 2 + cols * G.nodeW + (cols - 1) * G.gapX,
          h: G.header + G.pad * 2 + lines.length * G.nodeH + (lines.length - 1) * G.gapY,
          lines
        };
      }
      shapes.set(g.id, shape);
      area += (shape.w + G.groupGapX) * (shape.h + G.rankGap);
      widest = Math.max(widest, shape.w);
    }
    // Wrap rows at the width that makes the whole about 16:9.
    const wrapAt = Math.max(widest, G.minRowW, Math.sqrt(area * 16 / 9));
    const rankList = ranks.filter(Boolean);

    // A long chain of namespaces makes a tall, thin column: fold it into bands side by
    // side, each about as tall as the whole is wide. Estimated with the groups in name
    // order; the placement below orders them by their callers.
    let stacked = 0, blockW = 0, blocks = 0;
    for (const rank of rankList) {
      let x = 0, rowH = 0, h = 0;
      for (const g of rank) {
        const sh = shapes.get(g.id);
        if (x > 0 && x + sh.w > wrapAt) { h += rowH + G.groupGapY; x = 0; rowH = 0; }
        x += sh.w + G.groupGapX;
        rowH = Math.max(rowH, sh.h);
        blockW = Math.max(blockW, x - G.groupGapX);
      }
      stacked += h + rowH + G.rankGap;
      blocks++;
    }
    const bands = Math.max(1, Math.min(blocks, Math.round(Math.sqrt((16 / 9) * stacked / (blockW + G.bandGap)))));
    const bandH = stacked / bands;

    const frames = [];
    let bandX = 0, bandY = 0, bandW = 0, width = 0, height = 0;
    for (const rank of rankList) {
      const ordered = byBarycenter(rank, (g) => {
        const boxes = g.isCollapsed ? ['g:' + g.id] : g.visible.map((n) => n.id);
        return placedX(boxes.flatMap((b) => preds.get(b) || []));
      }, groupOrder);
      // Lay the rank out from (0, 0), then move it where it goes.
      const placed = [];
      let x = 0, y = 0, rowH = 0, blockWidth = 0;
      for (const g of ordered) {
        const shape = shapes.get(g.id);
        if (x > 0 && x + shape.w > wrapAt) {
          y += rowH + G.groupGapY;
          x = 0;
          rowH = 0;
        }
        placed.push({ g, shape, x, y });
        x += shape.w + G.groupGapX;
        rowH = Math.max(rowH, shape.h);
        blockWidth = Math.max(blockWidth, x - G.groupGapX);
      }
      const blockHeight = y + rowH;
      if (bands > 1 && bandY > 0 && bandY + blockHeight > bandH * 1.15) {
        bandX += bandW + G.bandGap;
        bandY = 0;
        bandW = 0;
      }
      for (const { g, shape, x: px, y: py } of placed) {
        const bx = bandX + px, by = bandY + py;
        const box = { x: bx, y: by, w: shape.w, h: shape.h };
        if (g.isCollapsed) {
          pos.set('g:' + g.id, box);
          frames.push({ g, box, collapsed: true, internal: internal.get('g:' + g.id) || [] });
          continue;
        }
        shape.lines.forEach((line, li) => {
          const order = byBarycenter(line.nodes, (n) => placedX(preds.get(n.id) || []), (n) => n.id);
          order.forEach((n, i) => {
            pos.set(n.id, { x: bx + G.pad + i * (G.nodeW + G.gapX), y: by + G.header + G.pad + li * (G.nodeH + G.gapY), w: G.nodeW, h: G.nodeH });
          });
        });
        frames.push({ g, box, collapsed: false });
      }
      bandW = Math.max(bandW, blockWidth);
      width = Math.max(width, bandX + bandW);
      height = Math.max(height, bandY + blockHeight);
      bandY += blockHeight + G.rankGap;
    }
    return { visible, dlist, pos, frames, internal, width, height, disp };
  }

  function groupOrder(g) { return (g.kind === 'ext' ? '0' : g.kind === 'hosts' ? '1' : '2') + g.name; }

  // ---- Drawing ----
  // edgePath runs from the caller down into the callee's top edge; a callee beside or
  // above the caller (the same rank, an earlier one, another band) is reached from the
  // side that faces it.
  function edgePath(a, b) {
    if (b.y > a.y + a.h + 20) {
      const x1 = a.x + a.w / 2, y1 = a.y + a.h, x2 = b.x + b.w / 2, y2 = b.y;
      const dy = Math.max(24, (y2 - y1) / 2);
      return `M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2 - 2}`;
    }
    if (b.x > a.x + a.w + 20 || b.x + b.w < a.x - 20) {
      const right = b.x > a.x;
      const x1 = right ? a.x + a.w : a.x, y1 = a.y + a.h / 2;
      const x2 = right ? b.x : b.x + b.w, y2 = b.y + b.h / 2;
      const dx = Math.max(30, Math.abs(x2 - x1) / 2) * (right ? 1 : -1);
      return `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2 - (right ? 2 : -2)},${y2}`;
    }
    // Overlapping columns, callee above: leave by the bottom, loop round, enter at the top.
    const x1 = a.x + a.w / 2, y1 = a.y + a.h, x2 = b.x + b.w / 2, y2 = b.y;
    const dy = Math.max(60, (y1 - y2) / 3 + 50);
    const side = Math.max(a.w, b.w) * 0.75 + 40;
    return `M${x1},${y1} C${x1 + side},${y1 + dy} ${x2 + side},${y2 - dy} ${x2},${y2 - 2}`;
  }

  function truncate(s, max) { return s.length > max ? s.slice(0, Math.max(1, max - 1)) + '…' : s; }

  function draw() {
    const model = state.model;
    const lay = computeLayout(model);
    state.layout = lay;
    const root = $('graph');
    clear(root);
    const defs = svg('defs');
    for (const st of STATUSES) {
      defs.appendChild(svg('marker', { id: 'arrow-' + st, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse', markerUnits: 'userSpaceOnUse' },
        svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: COLOR[st] })));
    }
    root.appendChild(defs);
    const world = svg('g', { id: 'world' });
    root.appendChild(world);
    $('graph-empty').hidden = lay.dlist.length > 0 || lay.frames.length > 0;

    const layerGroups = svg('g', { class: 'groups' });
    const layerEdges = svg('g', { class: 'edges' });
    const layerNodes = svg('g', { class: 'nodes' });
    world.append(layerGroups, layerEdges, layerNodes);

    const matchSet = new Set();
    if (state.search) for (const n of model.nodes.values()) if (nodeMatches(n)) matchSet.add(lay.disp(n));

    for (const f of lay.frames) {
      const g = f.g;
      if (f.collapsed) {
        const box = f.box;
        const drops = f.internal.filter((r) => r.status === 'would-drop').length;
        const cls = ['node', 'group-node', g.kind];
        if (g.visible.some((n) => n.uncovered)) cls.push('uncovered');
        const id = 'g:' + g.id;
        if (state.selected && state.selected.id === id) cls.push('selected');
        if (matchSet.has(id)) cls.push('match');
        const title = `${g.name}: ${plural(g.visible.length, 'workload', 'workloads')} (collapsed; click to expand)`;
        layerNodes.appendChild(svg('g', { class: cls.join(' '), 'data-id': id, 'data-group': g.id, onclick: (ev) => { ev.stopPropagation(); toggleGroup(g.id, false); },
          onmouseenter: () => focus(id), onmouseleave: () => focus(null) },
          svg('title', { text: title }),
          svg('rect', { x: box.x, y: box.y, width: box.w, height: box.h, rx: 8 }),
          svg('text', { x: box.x + 12, y: box.y + 21, 'font-weight': 600, text: '+ ' + truncate(g.name, 22) }),
          svg('text', { class: 'kind', x: box.x + 12, y: box.y + 40, text: `${plural(g.visible.length, 'workload', 'workloads')} · ${plural(f.internal.length, 'edge', 'edges')} inside${drops ? ` · ${drops} would drop` : ''}` })));
        continue;
      }
      const box = f.box;
      layerGroups.appendChild(svg('g', { class: 'group ' + g.kind, 'data-group': g.id },
        svg('rect', { class: 'group-box', x: box.x, y: box.y, width: box.w, height: box.h, rx: 8 }),
        svg('g', { class: 'group-header', onclick: (ev) => { ev.stopPropagation(); toggleGroup(g.id, true); } },
          svg('title', { text: 'Collapse ' + g.name }),
          svg('rect', { x: box.x, y: box.y, width: box.w, height: G.header, fill: 'transparent' }),
          svg('text', { class: 'group-title', x: box.x + 10, y: box.y + 17, text: '− ' + truncate(g.name, Math.floor(box.w / 7.5) - 6) + '  (' + g.visible.length + ')' }))));
      for (const n of g.visible) {
        const p = lay.pos.get(n.id);
        const cls = ['node', n.kind];
        if (n.uncovered) cls.push('uncovered');
        if (state.selected && state.selected.id === n.id) cls.push('selected');
        if (matchSet.has(n.id)) cls.push('match');
        const kind = KIND_SHORT[n.peer.kind] || (n.peer.kind || '').toLowerCase();
        const maxChars = Math.floor((G.nodeW - 18 - kind.length * 6) / 6.9);
        layerNodes.appendChild(svg('g', { class: cls.join(' '), 'data-id': n.id, 'data-group': g.id, 'data-kind': n.peer.kind || '', onclick: (ev) => { ev.stopPropagation(); select({ type: 'node', id: n.id }); },
          onmouseenter: () => focus(n.id), onmouseleave: () => focus(null) },
          svg('title', { text: n.name + (n.peer.kind && n.kind === 'workload' ? ' (' + n.peer.kind + ')' : '') }),
          svg('rect', { x: p.x, y: p.y, width: p.w, height: p.h, rx: 5 }),
          svg('text', { x: p.x + 8, y: p.y + 18, text: truncate(n.label, maxChars) }),
          svg('text', { class: 'kind', x: p.x + p.w - 6, y: p.y + 18, 'text-anchor': 'end', text: kind })));
      }
    }

    // Would-drop edges last, on top.
    const ordered = [...lay.dlist].sort((a, b) => RANK[a.status] - RANK[b.status] || cmp(a.id, b.id));
    for (const d of ordered) {
      const a = lay.pos.get(d.src), b = lay.pos.get(d.dst);
      const path = edgePath(a, b);
      const width = (1.2 + Math.min(3, Math.log10((d.count || 0) + 1))).toFixed(2);
      const cls = ['edge', d.status];
      if (state.selected && state.selected.id === d.id) cls.push('selected');
      if (matchSet.size && !matchSet.has(d.src) && !matchSet.has(d.dst)) cls.push('dim');
      layerEdges.appendChild(svg('g', {
        class: cls.join(' '), 'data-id': d.id, 'data-status': d.status, 'data-src': d.src, 'data-dst': d.dst, 'data-count': d.count,
        onclick: (ev) => { ev.stopPropagation(); select({ type: 'edge', id: d.id }); },
        onmouseenter: (ev) => showTip(ev, d), onmousemove: (ev) => moveTip(ev), onmouseleave: hideTip
      },
      svg('path', { class: 'line', d: path, stroke: COLOR[d.status], 'stroke-width': width, 'marker-end': `url(#arrow-${d.status})` }),
      svg('path', { class: 'hit', d: path })));
    }
    if (matchSet.size) {
      for (const e of layerNodes.children) if (!matchSet.has(e.getAttribute('data-id'))) e.classList.add('dim');
    }
    // Boxes and edges by id, so that hovering does not search the document.
    state.elements = new Map([...root.querySelectorAll('.node[data-id], .edge[data-id]')].map((e) => [e.getAttribute('data-id'), e]));
    // Many edges: the ones that need attention stay bright, the rest recede.
    root.classList.toggle('busy', lay.dlist.length > BUSY_EDGES);
    focus(null);
    applyView();
  }

  // focus brings a box and its edges forward, the rest back: hovering a box, or the
  // selected workload when nothing is hovered.
  function focus(id) {
    const root = $('graph');
    if (id === null && state.selected && state.selected.type === 'node') id = state.selected.id;
    for (const e of root.querySelectorAll('.hl')) e.classList.remove('hl');
    root.classList.toggle('focusing', id !== null);
    if (id === null || !state.layout) return;
    const mark = (elId) => {
      const e = state.elements.get(elId);
      if (e) e.classList.add('hl');
    };
    mark(id);
    for (const d of state.layout.dlist) {
      if (d.src !== id && d.dst !== id) continue;
      mark(d.id);
      mark(d.src);
      mark(d.dst);
    }
  }

  function boxName(id) {
    if (id.startsWith('g:')) return state.model.groups.get(id.slice(2)).name + ' (collapsed)';
    return state.model.nodes.get(id).name;
  }

  // ---- Tooltip ----
  let tip = null;
  function showTip(ev, d) {
    hideTip();
    const ports = [...new Set(d.recs.map((r) => portText(r.e)))];
    const lines = [`${boxName(d.src)} → ${boxName(d.dst)}`, `${LABEL[d.status]} · ${plural(d.count, 'flow', 'flows')}`,
      truncate(ports.join(', '), 80)];
    tip = el('div', { class: 'tooltip', text: lines.join('\n') });
    $('viewport').appendChild(tip);
    moveTip(ev);
  }
  function moveTip(ev) {
    if (!tip) return;
    const r = $('viewport').getBoundingClientRect();
    tip.style.left = ev.clientX - r.left + 14 + 'px';
    tip.style.top = ev.clientY - r.top + 12 + 'px';
  }
  function hideTip() { if (tip) { tip.remove(); tip = null; } }

  // ---- Pan and zoom ----
  function applyView() {
    const w = $('world');
    if (w) w.setAttribute('transform', `translate(${state.view.x.toFixed(1)},${state.view.y.toFixed(1)}) scale(${state.view.k.toFixed(4)})`);
  }
  function fit() {
    const lay = state.layout;
    const vp = $('viewport').getBoundingClientRect();
    if (!lay || !lay.width || vp.width === 0) { state.view = { x: 16, y: 16, k: 1 }; applyView(); return; }
    const k = Math.min(1.2, (vp.width - 32) / lay.width, (vp.height - 32) / lay.height);
    state.view = { k, x: (vp.width - lay.width * k) / 2, y: Math.max(16, (vp.height - lay.height * k) / 2) };
    applyView();
  }
  function zoomAt(factor, cx, cy) {
    const v = state.view;
    const k = Math.max(0.05, Math.min(4, v.k * factor));
    v.x = cx - (cx - v.x) * (k / v.k);
    v.y = cy - (cy - v.y) * (k / v.k);
    v.k = k;
    applyView();
  }
  function setupPanZoom() {
    const vp = $('viewport');
    let drag = null;
    vp.addEventListener('mousedown', (ev) => {
      if (ev.button !== 0 || ev.target.closest('.node, .edge, .group-header')) return;
      drag = { x: ev.clientX, y: ev.clientY, vx: state.view.x, vy: state.view.y, moved: false };
      vp.classList.add('panning');
    });
    window.addEventListener('mousemove', (ev) => {
      if (!drag) return;
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      state.view.x = drag.vx + dx;
      state.view.y = drag.vy + dy;
      applyView();
    });
    window.addEventListener('mouseup', () => {
      if (drag && !drag.moved) select(null);
      drag = null;
      vp.classList.remove('panning');
    });
    vp.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const r = vp.getBoundingClientRect();
      zoomAt(ev.deltaY < 0 ? 1.15 : 1 / 1.15, ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    $('zoom-in').addEventListener('click', () => { const r = vp.getBoundingClientRect(); zoomAt(1.25, r.width / 2, r.height / 2); });
    $('zoom-out').addEventListener('click', () => { const r = vp.getBoundingClientRect(); zoomAt(0.8, r.width / 2, r.height / 2); });
    $('zoom-fit').addEventListener('click', fit);
    $('expand-all').addEventListener('click', () => { for (const g of state.model.groups.values()) state.collapsed.set(g.id, false); draw(); fit(); });
    $('collapse-all').addEventListener('click', () => { for (const g of state.model.groups.values()) state.collapsed.set(g.id, true); draw(); fit(); });
  }

  function toggleGroup(id, collapse) {
    state.collapsed.set(id, collapse);
    if (state.selected && state.selected.type === 'node' && state.selected.id === 'g:' + id) state.selected = null;
    draw();
    renderDetails();
  }

  // ---- Selection and details ----
  function select(sel) {
    state.selected = sel;
    for (const e of document.querySelectorAll('#graph .selected')) e.classList.remove('selected');
    if (sel) {
      const e = document.querySelector(`#graph [data-id="${CSS.escape(sel.id)}"]`);
      if (e) e.classList.add('selected');
    }
    focus(null);
    renderDetails();
    renderUncovered();
  }

  function copyButton(text) {
    const fb = el('span', { class: 'copied' });
    const btn = el('button', { type: 'button', class: 'copy', text: 'Copy YAML', onclick: (ev) => { ev.stopPropagation(); copyText(text, fb); } });
    return el('div', { class: 'copy-row' }, btn, fb);
  }

  function copyText(text, fb) {
    const done = () => { fb.textContent = 'Copied'; setTimeout(() => { fb.textContent = ''; }, 1500); };
    const fallback = () => {
      const ta = el('textarea', { readonly: true, style: 'position:fixed;top:0;left:0;opacity:0' });
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      let ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      ta.remove();
      if (ok) done(); else fb.textContent = 'Copy failed: select the text instead';
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  }

  function suggestionBlock(s) {
    const head = s.extends ? `extends ClientIntents ${s.extends}` : 'new ClientIntents';
    return el('div', { class: 'suggestion', 'data-object': s.object },
      el('h4', { text: `Suggested ClientIntents ${s.object}` }),
      el('div', { class: 'muted', text: `${head} · file ${s.file} · adds ${s.targets.join(', ')}` }),
      el('pre', { class: 'yaml', text: s.yaml }),
      copyButton(s.yaml));
  }

  function fixesOf(recs) {
    const sugs = new Map(), notes = new Map();
    for (const r of recs) {
      if (r.status !== 'would-drop') continue;
      for (const s of r.suggestions) sugs.set(s.object, s);
      if (r.note) notes.set(r.note.kind + r.note.advice, r.note);
    }
    return { sugs: [...sugs.values()], notes: [...notes.values()] };
  }

  // coveredBy names what admits a covered edge: the ClientIntents targets behind the
  // rules when the report says (intents: [{clientIntents, target}]), and the rules.
  function coveredBy(e) {
    const parts = [];
    if (Array.isArray(e.intents) && e.intents.length) {
      parts.push('declared by ' + e.intents.map((i) => (typeof i === 'string' ? i : `ClientIntents ${i.clientIntents} (target ${i.target})`)).join(', '));
    }
    if (Array.isArray(e.allowedBy) && e.allowedBy.length) parts.push('allowed by ' + e.allowedBy.join(', '));
    return parts.length ? parts.join('; ') : 'admitted (the source is exempt)';
  }

  function edgeTable(recs, withEnds) {
    const rows = recs.slice(0, DETAIL_ROWS).map((r) => {
      const u = r.uncovered || r.e;
      const why = r.status === 'covered' ? coveredBy(r.e) : (u.reason || r.e.reason || '');
      return [
        el('tr', { 'data-key': r.key },
          withEnds ? el('td', { text: `${r.src.name} → ${r.dst.name}` }) : null,
          el('td', { class: 'mono', text: portText(r.e) }),
          el('td', {}, el('span', { class: 'badge ' + r.status, title: TITLE[r.status], text: LABEL[r.status] })),
          el('td', { class: 'num', text: r.e.count || 0 }),
          el('td', { text: fmtTime(r.e.firstSeen) }),
          el('td', { text: fmtTime(r.e.lastSeen) })),
        el('tr', {}, el('td', { class: 'reason', colspan: withEnds ? 6 : 5, text: why }))
      ];
    });
    const more = recs.length > DETAIL_ROWS ? el('p', { class: 'muted', text: `and ${recs.length - DETAIL_ROWS} more` }) : null;
    return [el('table', {},
      el('thead', {}, el('tr', {}, withEnds ? el('th', { text: 'Edge' }) : null, el('th', { text: 'Port' }), el('th', { text: 'Status' }),
        el('th', { text: 'Flows' }), el('th', { text: 'First seen' }), el('th', { text: 'Last seen' }))),
      el('tbody', {}, rows)), more];
  }

  function renderDetails() {
    const box = $('details');
    clear(box);
    const sel = state.selected;
    const lay = state.layout;
    if (!sel || !lay) {
      box.appendChild(el('p', { class: 'hint', text: 'Click an edge or a workload for details. Click a namespace header to collapse or expand it; drag to pan, scroll to zoom.' }));
      return;
    }
    if (sel.type === 'edge') {
      const d = lay.dlist.find((x) => x.id === sel.id);
      if (!d) { state.selected = null; renderDetails(); return; }
      box.setAttribute('data-selected', d.id);
      append(box,
        el('h3', { text: `${boxName(d.src)} → ${boxName(d.dst)}` }),
        el('p', {}, el('span', { class: 'badge ' + d.status, title: TITLE[d.status], text: LABEL[d.status] }), ' ', plural(d.count, 'flow', 'flows'),
          d.recs.length > 1 ? ` on ${plural(d.recs.length, 'edge', 'edges')}` : ''),
        edgeTable(d.recs, d.src.startsWith('g:') || d.dst.startsWith('g:')));
      const fx = fixesOf(d.recs);
      fx.sugs.forEach((s) => box.appendChild(suggestionBlock(s)));
      fx.notes.forEach((n) => box.appendChild(el('div', {}, el('h4', { text: 'Not a ClientIntents' }), el('p', { class: 'advice', text: n.advice + (n.detail ? ' (' + n.detail + ')' : '') }))));
      return;
    }
    box.setAttribute('data-selected', sel.id);
    const n = state.model.nodes.get(sel.id);
    if (!n) { state.selected = null; renderDetails(); return; }
    const outs = n.out.filter(edgeVisible), ins = n.in.filter(edgeVisible);
    append(box, el('h3', { text: n.name }),
      el('p', { class: 'muted', text: [n.peer.kind, n.peer.namespace ? 'namespace ' + n.peer.namespace : ''].filter(Boolean).join(' · ') }));
    if (outs.length) append(box, el('h4', { text: `Calls (${outs.length})` }), edgeTable(outs, true));
    if (ins.length) append(box, el('h4', { text: `Called by (${ins.length})` }), edgeTable(ins, true));
    const s = state.model.sugByClient.get((n.peer.namespace || '') + '/' + (n.peer.workload || ''));
    if (s) box.appendChild(suggestionBlock(s));
  }

  // ---- Namespace overview ----
  function gateOf(info) {
    const g = info && info.gate;
    if (g === undefined || g === null) return null;
    if (typeof g === 'boolean') return { result: g ? 'pass' : 'fail', reason: '' };
    if (typeof g !== 'object') return { result: String(g), reason: '' };
    let result = g.result || g.status || g.verdict || g.state;
    if (!result) {
      const p = g.passed !== undefined ? g.passed : g.pass !== undefined ? g.pass : g.ok;
      result = p === true ? 'pass' : p === false ? 'fail' : 'pending';
    }
    const reason = g.reason || g.message || (Array.isArray(g.reasons) ? g.reasons.join('; ') : '');
    return { result: String(result), reason: String(reason || '') };
  }
  // gateOfResult reads a gate result of a daemon's report: {namespace, pass, reasons}.
  function gateOfResult(g) {
    if (!g) return null;
    const reasons = Array.isArray(g.reasons) ? g.reasons.map((r) => (r && r.message) || String(r)).join('; ') : '';
    return { result: g.pass === true || g.passed === true ? 'pass' : 'fail', reason: reasons };
  }
  // soakOfSummary reads a soak summary of a daemon's report: how much of the gate's
  // window the namespace has been tracked, and the gaps in it.
  function soakOfSummary(x, gate) {
    if (!x) return null;
    let window = gate && typeof gate.windowSeconds === 'number' ? gate.windowSeconds : null;
    if (!window && x.now && x.windowStart) window = (Date.parse(x.now) - Date.parse(x.windowStart)) / 1000;
    const tracked = typeof x.trackedSeconds === 'number' ? x.trackedSeconds : null;
    if (!window || tracked === null) return { frac: null, text: 'tracking', raw: x };
    const parts = [`tracked ${human(Math.min(tracked, window))} of ${human(window)}`];
    if (x.gapSeconds) parts.push(`gaps ${human(x.gapSeconds)}`);
    return { frac: Math.max(0, Math.min(1, tracked / window)), text: parts.join(', '), raw: x };
  }
  function human(sec) {
    if (sec >= 7 * 86400 && sec % 86400 === 0) return sec / 86400 + 'd';
    if (sec >= 3600) return (Math.round(sec / 360) / 10) + 'h';
    if (sec >= 60) return Math.round(sec / 60) + 'm';
    return Math.round(sec) + 's';
  }
  function gateClass(r) {
    if (/^(pass|passed|passing|ok|green|ready|open)$/i.test(r)) return 'pass';
    if (/^(fail|failed|failing|blocked|red|closed)$/i.test(r)) return 'fail';
    return 'pending';
  }
  function seconds(v) {
    if (typeof v === 'number') return v;
    if (typeof v !== 'string') return null;
    let total = 0, matched = false;
    const re = /([\d.]+)\s*(ns|us|µs|ms|s|m|h|d)/g;
    let m;
    while ((m = re.exec(v))) {
      matched = true;
      total += parseFloat(m[1]) * { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
    }
    return matched ? total : null;
  }
  function soakOf(info) {
    const s = info && info.soak;
    if (s === undefined || s === null) return null;
    const num = (v) => (typeof v === 'number' && isFinite(v) ? v : null);
    let frac = null, text = '';
    if (typeof s === 'number') frac = s > 1 ? s / 100 : s;
    else if (typeof s === 'object') {
      frac = num(s.progress) ?? num(s.fraction) ?? num(s.ratio);
      if (frac === null && num(s.percent) !== null) frac = s.percent / 100;
      if (frac !== null && frac > 1) frac /= 100;
      if (frac === null) {
        const done = seconds(s.elapsed ?? s.observed ?? s.covered ?? s.elapsedSeconds);
        const need = seconds(s.required ?? s.window ?? s.duration ?? s.requiredSeconds);
        if (done !== null && need) frac = done / need;
      }
      text = s.label || s.message || '';
    }
    if (frac === null) return { frac: null, text: text || 'in progress', raw: s };
    return { frac: Math.max(0, Math.min(1, frac)), text, raw: s };
  }

  function renderOverview() {
    const model = state.model;
    const tbody = document.querySelector('#overview tbody');
    clear(tbody);
    const uncoveredBy = new Map();
    for (const r of model.table) {
      for (const g of new Set([r.src.group, r.dst.group])) uncoveredBy.set(g, (uncoveredBy.get(g) || 0) + 1);
    }
    for (const ns of model.namespaces) {
      const info = model.nsInfo.get(ns);
      const mode = info && info.mode ? String(info.mode) : model.enforced.has(ns) || (info && info.enforced) ? 'shadow' : 'not enforced';
      const gate = gateOf(info) || gateOfResult(model.gates.get(ns));
      const soak = soakOf(info) || soakOfSummary(model.soaks.get(ns), model.gates.get(ns));
      const uncovered = info && typeof info.uncoveredEdges === 'number' ? info.uncoveredEdges : uncoveredBy.get('ns:' + ns) || 0;
      const soakCell = soak === null
        ? el('span', { class: 'muted', text: 'no soak data' })
        : el('div', { class: 'soak', title: soak.text || JSON.stringify(soak.raw) },
          el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': soak.frac === null ? null : Math.round(soak.frac * 100) },
            el('span', { class: soak.frac === 1 ? 'done' : '', style: `width:${soak.frac === null ? 0 : (soak.frac * 100).toFixed(1)}%` })),
          el('span', { class: 'pct', text: soak.frac === null ? soak.text : Math.floor(soak.frac * 100) + '%' }));
      const tr = el('tr', { class: 'clickable' + (state.nsFilter === ns ? ' selected' : ''), 'data-ns': ns, title: 'Show only ' + ns + ' in the graph and table', onclick: () => setNamespace(state.nsFilter === ns ? '' : ns) },
        el('td', { text: ns }),
        el('td', {}, el('span', { class: 'badge mode ' + mode.toLowerCase().replace(/[^a-z]+/g, '-') + (mode === 'not enforced' ? ' none' : ''), text: mode })),
        el('td', { text: info && info.phase ? String(info.phase) : '—' }),
        el('td', {}, gate === null ? el('span', { class: 'muted', text: 'not evaluated' }) : el('span', { class: 'badge ' + gateClass(gate.result), title: gate.reason || null, text: gate.result })),
        el('td', {}, soakCell),
        el('td', { class: 'num', text: info ? info.connections ?? '—' : '—' }),
        el('td', { class: 'num', text: info ? info.wouldDrop ?? '—' : '—' }),
        el('td', { class: 'num', text: uncovered }));
      tbody.appendChild(tr);
    }
  }

  // ---- Uncovered table ----
  const SORT_KEYS = {
    source: (r) => r.src.name, destination: (r) => r.dst.name,
    port: (r) => (r.e.protocol || '') + String(r.e.port || 0).padStart(5, '0'),
    count: (r) => r.e.count || 0, firstSeen: (r) => r.e.firstSeen || '', lastSeen: (r) => r.e.lastSeen || ''
  };
  function rowVisible(r) {
    if (state.nsFilter) {
      const g = 'ns:' + state.nsFilter;
      if (r.src.group !== g && r.dst.group !== g) return false;
    }
    if (state.search && !(r.src.search.includes(state.search) || r.dst.search.includes(state.search))) return false;
    return true;
  }
  function renderUncovered() {
    const model = state.model;
    const tbody = document.querySelector('#uncovered tbody');
    clear(tbody);
    const key = SORT_KEYS[state.sort.key];
    const rows = model.table.filter(rowVisible).sort((a, b) => {
      const x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * state.sort.dir || cmp(a.key, b.key);
    });
    for (const th of document.querySelectorAll('#uncovered th[data-sort]')) {
      th.setAttribute('aria-sort', th.dataset.sort === state.sort.key ? (state.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
    }
    const n = model.table.length;
    $('uncovered-intro').textContent = n === 0
      ? 'Nothing would be dropped.'
      : `${plural(n, 'edge is', 'edges are')} allowed today and would be dropped under enforcement` +
        (rows.length !== n ? ` (${rows.length} shown)` : '') + '. ' +
        (state.data.merged ? 'The suggestions extend the clients\' existing ClientIntents.' : 'The suggestions were made without the cluster\'s ClientIntents: new objects are named <client>-suggested.');
    const selectedKeys = new Set();
    if (state.selected && state.selected.type === 'edge' && state.layout) {
      const d = state.layout.dlist.find((x) => x.id === state.selected.id);
      if (d) d.recs.forEach((r) => selectedKeys.add(r.key));
    }
    for (const r of rows) {
      const open = state.openFix.has(r.key);
      const fix = r.suggestions.length
        ? el('button', { type: 'button', class: 'fix', 'aria-expanded': open ? 'true' : 'false', text: open ? 'Hide YAML' : 'Suggested YAML',
          onclick: (ev) => { ev.stopPropagation(); toggleFix(r.key); } })
        : r.note
          ? el('button', { type: 'button', class: 'fix note', 'aria-expanded': open ? 'true' : 'false', text: open ? 'Hide' : 'Not an intent: why',
            onclick: (ev) => { ev.stopPropagation(); toggleFix(r.key); } })
          : el('span', { class: 'muted', text: '—' });
      tbody.appendChild(el('tr', { class: 'clickable' + (selectedKeys.has(r.key) ? ' selected' : ''), 'data-key': r.key, title: r.uncovered ? r.uncovered.reason : '', onclick: () => selectRec(r) },
        el('td', { text: r.src.name }), el('td', { text: r.dst.name }), el('td', { class: 'mono', text: portText(r.e) }),
        el('td', { class: 'num', text: r.e.count || 0 }), el('td', { text: fmtTime(r.e.firstSeen) }), el('td', { text: fmtTime(r.e.lastSeen) }),
        el('td', {}, fix)));
      if (open) {
        const cell = el('td', { colspan: 7 });
        cell.appendChild(el('p', { class: 'reason', text: (r.uncovered && r.uncovered.reason) || '' }));
        r.suggestions.forEach((s) => cell.appendChild(suggestionBlock(s)));
        if (r.note) cell.appendChild(el('p', { class: 'advice', text: r.note.advice + (r.note.detail ? ' (' + r.note.detail + ')' : '') }));
        tbody.appendChild(el('tr', { class: 'yaml-row', 'data-fix-for': r.key }, cell));
      }
    }
  }
  function toggleFix(key) {
    if (state.openFix.has(key)) state.openFix.delete(key); else state.openFix.add(key);
    renderUncovered();
  }
  function selectRec(r) {
    const lay = state.layout;
    if (!lay) return;
    let d = lay.dlist.find((x) => x.recs.includes(r));
    if (!d) {
      // Hidden by a status toggle, or inside a collapsed namespace: show it.
      state.statuses[r.status] = true;
      for (const g of [r.src.group, r.dst.group]) state.collapsed.set(g, false);
      syncLegend();
      draw();
      d = state.layout.dlist.find((x) => x.recs.includes(r));
    }
    if (d) select({ type: 'edge', id: d.id });
    $('viewport').scrollIntoView({ block: 'nearest' });
  }

  // ---- Header, legend, inputs ----
  function renderSummary() {
    const m = state.model;
    const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    m.recs.forEach((r) => { counts[r.status]++; });
    const f = m.report.flows || {};
    const p = $('summary');
    clear(p);
    const b = (v) => el('b', { text: String(v) });
    append(p, [b(m.namespaces.length), ' namespaces · ', b(m.workloads), ' workloads · ', b(m.recs.length), ' edges: ',
      STATUSES.map((s, i) => [i ? ', ' : '', b(counts[s]), ' ' + LABEL[s]]),
      ' · ', b(f.read || 0), ' flows read, ', b(f.evaluated || 0), ' evaluated',
      m.enforced.size ? [' · enforced: ', [...m.enforced].join(', ')] : ' · nothing enforced']);
  }
  function renderLegend() {
    const lg = $('legend');
    clear(lg);
    for (const st of STATUSES) {
      lg.appendChild(el('label', { title: TITLE[st] },
        el('input', { type: 'checkbox', 'data-status': st, checked: state.statuses[st], onchange: (ev) => { state.statuses[st] = ev.target.checked; draw(); fit(); renderDetails(); } }),
        el('span', { class: 'swatch ' + st, style: 'border-top-color:' + COLOR[st] }), LABEL[st]));
    }
  }
  function syncLegend() {
    for (const cb of document.querySelectorAll('#legend input')) cb.checked = state.statuses[cb.dataset.status];
  }
  function renderNamespaceFilter() {
    const sel = $('ns-filter');
    const keep = state.nsFilter;
    while (sel.options.length > 1) sel.remove(1);
    for (const ns of state.model.namespaces) sel.appendChild(el('option', { value: ns, text: ns }));
    if (keep && !state.model.namespaces.includes(keep)) state.nsFilter = '';
    sel.value = state.nsFilter;
  }
  function renderInputs() {
    const f = state.model.report.flows || {};
    const box = $('flows');
    clear(box);
    const list = (m) => Object.entries(m || {}).sort((a, b) => cmp(a[0], b[0])).map(([k, v]) => `${k} ${v}`).join(', ');
    const items = [`${f.read || 0} flow records read, ${f.evaluated || 0} evaluated`];
    if (list(f.skipped)) items.push('skipped: ' + list(f.skipped));
    if (list(f.malformed)) items.push('malformed: ' + list(f.malformed));
    if (f.lostEvents) items.push(`Hubble reported ${f.lostEvents} lost flows: the report may be incomplete`);
    // A daemon's report says how its flow sources are doing.
    (Array.isArray(state.model.report.sources) ? state.model.report.sources : []).forEach((src) => {
      if (!src || !src.name) return;
      items.push(`source ${src.name}: ${src.state || 'unknown'}` + (src.since ? ` since ${fmtTime(src.since)}` : '') +
        (src.lastFlow ? `, last flow ${fmtTime(src.lastFlow)}` : '') + (src.message ? ` (${src.message})` : ''));
    });
    (state.model.report.warnings || []).forEach((w) => items.push('warning: ' + w));
    box.appendChild(el('ul', {}, items.map((t) => el('li', { text: t }))));
  }

  function setNamespace(ns) {
    state.nsFilter = ns;
    $('ns-filter').value = ns;
    state.selected = null;
    draw();
    fit();
    renderOverview();
    renderDetails();
    renderUncovered();
  }

  function rebuild(refit) {
    state.model = buildModel(state.data);
    renderSummary();
    renderNamespaceFilter();
    renderOverview();
    draw();
    if (refit) fit();
    renderDetails();
    renderUncovered();
    renderInputs();
  }

  // ---- Live refresh ----
  function suggestURL(path) {
    let base = location.href.split('#')[0].split('?')[0];
    if (!base.endsWith('/')) base += '/';
    return new URL(path, base).toString();
  }
  function banner(msg) {
    const b = $('banner');
    b.textContent = msg || '';
    b.hidden = !msg;
  }
  function liveStatus() {
    const live = state.data.live;
    const when = state.lastUpdate ? state.lastUpdate.toLocaleTimeString() : 'never';
    const generated = state.model && state.model.report.generatedAt ? ` (report of ${fmtTime(state.model.report.generatedAt)})` : '';
    $('live-status').textContent = `Live from ${live.reportURL} · updated ${when}${generated} · ` +
      (state.paused ? 'paused' : `every ${live.refreshSeconds} s`);
    $('live-pause').textContent = state.paused ? 'Resume' : 'Pause';
    $('live-pause').setAttribute('aria-pressed', state.paused ? 'true' : 'false');
  }
  async function refresh() {
    const live = raw.live;
    clearTimeout(state.timer);
    try {
      const res = await fetch(new URL(live.reportURL, location.href).toString(), { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(`GET ${live.reportURL}: ${res.status} ${res.statusText}`);
      const text = await res.text();
      const report = JSON.parse(text);
      let sug = { suggestions: [], notes: [], merged: false };
      let warn = '';
      const sres = await fetch(suggestURL(live.suggestPath), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: text });
      if (sres.ok) sug = await sres.json();
      else warn = `suggestions unavailable: ${sres.status} ${(await sres.text()).trim()}`;
      const first = !state.model;
      state.data = { report, suggestions: sug.suggestions || [], notes: sug.notes || [], merged: !!sug.merged, live };
      state.lastUpdate = new Date();
      banner(warn);
      rebuild(first);
    } catch (err) {
      banner(`Could not refresh: ${err.message}. Showing the last report.`);
    } finally {
      liveStatus();
      if (!state.paused) state.timer = setTimeout(refresh, live.refreshSeconds * 1000);
    }
  }

  // ---- Wiring ----
  function init() {
    renderLegend();
    setupPanZoom();
    $('ns-filter').addEventListener('change', (ev) => setNamespace(ev.target.value));
    let searchTimer = null;
    $('search').addEventListener('input', (ev) => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        state.search = ev.target.value.trim().toLowerCase();
        draw();
        fit();
        renderUncovered();
      }, 120);
    });
    for (const th of document.querySelectorAll('#uncovered th[data-sort]')) {
      th.querySelector('button').addEventListener('click', () => {
        const k = th.dataset.sort;
        state.sort = state.sort.key === k ? { key: k, dir: -state.sort.dir } : { key: k, dir: k === 'count' || k.endsWith('Seen') ? -1 : 1 };
        renderUncovered();
      });
    }
    window.addEventListener('resize', () => fit());
    window.shadowgate = {
      state,
      refresh: raw.live ? refresh : () => Promise.resolve(),
      edgeKey,
      // The keys of the edges drawn, for tests and for scripting the page.
      drawn: () => state.layout.dlist.map((d) => ({ id: d.id, status: d.status, keys: d.recs.map((r) => r.key) }))
    };
    if (raw.live) {
      $('live').hidden = false;
      $('live-refresh').addEventListener('click', () => { refresh(); });
      $('live-pause').addEventListener('click', () => {
        state.paused = !state.paused;
        if (state.paused) clearTimeout(state.timer); else refresh();
        liveStatus();
      });
      liveStatus();
      state.ready = refresh();
      return;
    }
    rebuild(true);
    state.ready = Promise.resolve();
  }

  init();
}());
