// Tell RequireJS where the vendored @jupyter-widgets/html-manager lives (this folder), so the icon fonts that
// embed-amd.js asks for load from the book's own _static/widgets/ rather than from a path beside each page.
(function () {
  var folder = document.currentScript.src.replace(/\/[^/]*$/, "");
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": folder } });
})();
