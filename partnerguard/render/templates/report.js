// PartnerGuard report: filters the findings table. Allowed by its SHA-256 hash in the page's
// Content-Security-Policy, so it must stay byte-identical to what html_report.py hashes.
// It reads the table with textContent and only toggles `hidden` and sets `textContent`: data
// never becomes markup. Filters live in the URL fragment (#state=new&q=admin), so a view can be
// shared; a fragment without "=" is an ordinary anchor and leaves the filters alone.
(function () {
  "use strict";
  var panel = document.getElementById("filters");
  var table = document.getElementById("findings-table");
  if (!panel || !table) {
    return;
  }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var haystacks = rows.map(function (row) {
    return row.textContent.toLowerCase();
  });
  var names = ["tenant", "state", "severity", "check", "q"];
  var attributes = { tenant: "data-tenant", state: "data-state", severity: "data-severity", check: "data-check" };
  var controls = {};
  names.forEach(function (name) {
    controls[name] = document.getElementById("filter-" + name);
  });
  var shown = document.getElementById("findings-shown");
  var none = document.getElementById("findings-none");

  function value(name) {
    var control = controls[name];
    return control ? control.value : "";
  }

  function apply() {
    var query = value("q").trim().toLowerCase();
    var count = 0;
    rows.forEach(function (row, index) {
      var match = names.every(function (name) {
        var wanted = value(name);
        if (!wanted) {
          return true;
        }
        if (name === "q") {
          return haystacks[index].indexOf(query) !== -1;
        }
        return row.getAttribute(attributes[name]) === wanted;
      });
      row.hidden = !match;
      if (match) {
        count += 1;
      }
    });
    shown.textContent = String(count);
    none.hidden = count !== 0;
  }

  function remember() {
    var params = new URLSearchParams();
    names.forEach(function (name) {
      if (value(name)) {
        params.set(name, value(name));
      }
    });
    var fragment = params.toString();
    try {
      history.replaceState(null, "", fragment ? "#" + fragment : location.pathname + location.search);
    } catch (ignored) {
      // Some browsers refuse to rewrite the URL of a file opened from disk; filtering still works.
    }
  }

  function restore() {
    var fragment = location.hash.replace(/^#/, "");
    if (fragment.indexOf("=") === -1) {
      return false;
    }
    var params = new URLSearchParams(fragment);
    names.forEach(function (name) {
      var control = controls[name];
      if (!control) {
        return;
      }
      var wanted = params.get(name) || "";
      if (control.tagName === "SELECT") {
        // Only a value the list offers; anything else (a stale or edited link) means "all".
        var offered = Array.prototype.some.call(control.options, function (option) {
          return option.value === wanted;
        });
        control.value = offered ? wanted : "";
      } else {
        control.value = wanted;
      }
    });
    return true;
  }

  function changed() {
    apply();
    remember();
  }

  restore();
  apply();
  panel.hidden = false;
  panel.addEventListener("input", changed);
  panel.addEventListener("change", changed);
  document.getElementById("filter-reset").addEventListener("click", function () {
    names.forEach(function (name) {
      if (controls[name]) {
        controls[name].value = "";
      }
    });
    changed();
  });
  window.addEventListener("hashchange", function () {
    if (restore()) {
      apply();
    }
  });
})();
