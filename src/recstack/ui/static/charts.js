// The dashboard's charts (uPlot), fed by the same-origin JSON endpoints named in data-src.
(function () {
  function width(el) { return Math.max(280, el.clientWidth || 600); }
  function fetchJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(url + ": " + r.status); } return r.json(); });
  }
  var overview = document.getElementById("overview-chart");
  if (overview) {
    var plot = null;
    var draw = function () {
      fetchJson(overview.dataset.src).then(function (body) {
        var s = body.series;
        var data = [s.at, s.requests_per_second, s.p50_ms, s.p95_ms, s.p99_ms];
        if (!plot) {
          plot = new uPlot({
            width: width(overview), height: 220,
            series: [{}, { label: "req/s", stroke: "#2457a6", scale: "rps" },
              { label: "p50 ms", stroke: "#1a7f37", scale: "ms" },
              { label: "p95 ms", stroke: "#bf8700", scale: "ms" },
              { label: "p99 ms", stroke: "#b42318", scale: "ms" }],
            axes: [{}, { scale: "rps" }, { scale: "ms", side: 1, grid: { show: false } }]
          }, data, overview);
        } else { plot.setData(data); }
      }).catch(function () {});
    };
    draw();
    setInterval(draw, 3000);
  }
  var types = document.getElementById("types-chart");
  if (types) {
    fetchJson(types.dataset.src).then(function (body) {
      var names = Object.keys(body.types);
      if (!names.length) { types.textContent = "No events yet."; return; }
      var n = body.types[names[0]].length;
      var xs = []; for (var i = 0; i < n; i++) { xs.push(body.start + i * body.step); }
      var colours = ["#2457a6", "#1a7f37", "#bf8700", "#b42318", "#8250df", "#0a7ea4"];
      var series = [{}].concat(names.map(function (name, i) { return { label: name, stroke: colours[i % colours.length] }; }));
      new uPlot({ width: width(types), height: 240, series: series }, [xs].concat(names.map(function (k) { return body.types[k]; })), types);
    }).catch(function () {});
  }
})();
