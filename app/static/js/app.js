// Progressive enhancements; every page works without them.
(function () {
  'use strict';

  // Everything in the page's language (<html lang>, chosen by the server).
  var lang = document.documentElement.lang || undefined;

  // Times in the reader's terms: "3 minutes ago", "yesterday", a date; the
  // exact local time on hover. <time datetime> stays the source of truth and
  // the server's UTC text stays when JavaScript is off.
  var MINUTE = 60, HOUR = 3600, DAY = 86400;
  var exact = new Intl.DateTimeFormat(lang, {dateStyle: 'full', timeStyle: 'short'});
  var dateOnly = new Intl.DateTimeFormat(lang, {day: 'numeric', month: 'short', year: 'numeric'});
  var relative = new Intl.RelativeTimeFormat(lang, {numeric: 'auto'});
  var plural = new Intl.PluralRules(lang);

  function startOfDay(d) { return new Date(d.getFullYear(), d.getMonth(), d.getDate()); }

  function describe(when, now) {
    var seconds = Math.round((now - when) / 1000);
    if (seconds < 45) return relative.format(0, 'second');  // "now"
    if (seconds < HOUR) return relative.format(-Math.round(seconds / MINUTE), 'minute');
    var days = Math.round((startOfDay(now) - startOfDay(when)) / (DAY * 1000));
    if (days === 0) return relative.format(-Math.round(seconds / HOUR), 'hour');
    if (days === 1) return relative.format(-1, 'day');  // "yesterday"
    if (days < 7) return relative.format(-days, 'day');
    return dateOnly.format(when);
  }

  function refreshTimes() {
    var now = new Date();
    document.querySelectorAll('time[data-relative]').forEach(function (el) {
      var when = new Date(el.getAttribute('datetime'));
      if (isNaN(when)) return;
      el.textContent = describe(when, now);
      el.title = exact.format(when);
    });
  }

  // The words for a count `n`, from the field's data-KIND-CATEGORY
  // attributes (one per plural category of the page's language, "{n}" for
  // the number), else data-KIND-other.
  function counted(field, kind, n) {
    var words = field.getAttribute('data-' + kind + '-' + plural.select(n)) ||
      field.getAttribute('data-' + kind + '-other') || '{n}';
    return words.replace('{n}', String(n));
  }

  // The post composer: characters left, counted as the server counts them
  // (code points, a line break as one), and Ctrl/Cmd+Enter to post.
  function setUpComposer(field) {
    var limit = parseInt(field.getAttribute('data-limit'), 10);
    var counter = document.getElementById(field.getAttribute('data-counter'));
    function update() {
      var left = limit - Array.from(field.value).length;
      counter.textContent = left >= 0 ? counted(field, 'left', left) : counted(field, 'over', -left);
      counter.classList.toggle('text-danger', left < 0);
      field.classList.toggle('is-invalid', left < 0);
      field.setAttribute('aria-invalid', left < 0 ? 'true' : 'false');
    }
    field.addEventListener('input', update);
    field.addEventListener('keydown', function (event) {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        field.form.requestSubmit();
      }
    });
    update();
  }

  document.addEventListener('DOMContentLoaded', function () {
    refreshTimes();
    setInterval(refreshTimes, 60 * 1000);
    document.querySelectorAll('textarea[data-counter]').forEach(setUpComposer);
    document.querySelectorAll('[data-print]').forEach(function (button) {
      button.addEventListener('click', function () { window.print(); });
    });
  });
})();
