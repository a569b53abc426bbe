// Progressive enhancement of the forecast form: ask /prediction without reloading the page.
// Without JavaScript (or if this fails) the form submits as a plain GET and the server renders it.
(function () {
  "use strict";
  var form = document.getElementById("forecast-form");
  if (!form || !window.fetch || !window.URLSearchParams) { return; }
  var errorBox = document.getElementById("form-error");
  var result = document.getElementById("result");
  var button = document.getElementById("submit");

  function params() {
    var query = new URLSearchParams();
    ["date", "item_nbr", "store_nbr"].forEach(function (name) {
      var field = form.elements[name];
      if (field) { query.set(name, field.value); }
    });
    if (form.elements.onpromotion && form.elements.onpromotion.checked) { query.set("onpromotion", "true"); }
    return query;
  }

  function clearErrors() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (el) {
      el.removeAttribute("aria-invalid");
    });
  }

  function showError(body) {
    errorBox.textContent = body.error || "Something went wrong.";
    errorBox.hidden = false;
    var field = body.field && form.elements[body.field];
    if (field && field.setAttribute) { field.setAttribute("aria-invalid", "true"); field.focus(); }
    result.hidden = true;
  }

  function line(tag, className) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    return el;
  }

  function showResult(body) {
    result.textContent = "";
    var figure = line("p", "figure");
    var number = line("span");
    number.id = "prediction";
    number.dataset.value = String(body.prediction);
    number.textContent = body.prediction.toFixed(1);
    var unit = line("span", "unit");
    unit.textContent = " units";
    figure.append(number, unit);
    var what = line("p");
    what.id = "what";
    var name = line("strong");
    name.textContent = body.item_name;
    what.append("of ", name, " (item " + body.item_nbr + ") in store " + body.store_nbr + " on " + body.date +
                (body.onpromotion ? ", on promotion" : ""));
    var model = line("p", "muted");
    model.id = "model";
    var version = line("strong");
    version.id = "model-version";
    version.textContent = body.model_version;
    var run = line("code");
    run.textContent = String(body.run_id).slice(0, 12);
    model.append("Forecast by model version ", version, " (run ", run, ")");
    result.append(figure, what, model);
    result.hidden = false;
  }

  // The same note as the server's (web.date_note) when the date is far outside the model's data.
  var dateInput = document.getElementById("date");
  var note = document.getElementById("date-note");
  function days(a, b) { return Math.round((Date.parse(a) - Date.parse(b)) / 86400000); }
  function updateNote() {
    var first = dateInput.dataset.first, last = dateInput.dataset.last, far = Number(dateInput.dataset.farDays);
    var day = dateInput.value, text = "";
    if (!first || !note || !/^\d{4}-\d{2}-\d{2}$/.test(day)) { return; }
    if (days(day, last) > far) {
      text = day + " is " + days(day, last).toLocaleString("en-US") + " days after the model's data ends (" + last +
        "): the forecast follows the calendar and the products' averages, not recent sales.";
    } else if (days(first, day) > far) {
      text = day + " is " + days(first, day).toLocaleString("en-US") + " days before the model's data begins (" + first + ").";
    }
    note.textContent = text;
    note.hidden = !text;
  }
  dateInput.addEventListener("change", updateNote);
  dateInput.addEventListener("input", updateNote);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var query = params();
    clearErrors();
    button.disabled = true;
    // this problem's routes: /prediction and /, or /<problem>/prediction and /<problem>/ (the form says which)
    fetch(form.dataset.prediction + "?" + query.toString(), { headers: { "Accept": "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        if (answer.ok) { showResult(answer.body); } else { showError(answer.body); }
        history.replaceState(null, "", form.getAttribute("action") + "?" + query.toString());
      })
      .catch(function () { form.submit(); })
      .finally(function () { button.disabled = false; });
  });
}());
