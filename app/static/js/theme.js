// Loaded in <head>, before the page is painted: follow the system's light or
// dark setting (Bootstrap 5.3 colour modes), so the wrong theme never flashes.
(function () {
  var query = window.matchMedia('(prefers-color-scheme: dark)');
  function apply() {
    document.documentElement.setAttribute('data-bs-theme', query.matches ? 'dark' : 'light');
  }
  apply();
  query.addEventListener('change', apply);
})();
