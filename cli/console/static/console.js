// The review console's only script (served from the package, allowed by the page's CSP as 'self').
// Everything works without it; it adds the keyboard shortcuts and click-to-reveal on the image.
(function () {
  'use strict';

  function typing(target) {
    if (!target || target.nodeType !== 1) return false;
    if (target.isContentEditable) return true;
    var tag = target.tagName;
    if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
    return tag === 'INPUT' && target.type !== 'checkbox' && target.type !== 'radio' && target.type !== 'button' && target.type !== 'submit';
  }

  function reveal() {
    var box = document.getElementById('reveal');
    if (box) box.checked = !box.checked;
  }

  document.addEventListener('keydown', function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var form = document.getElementById('decision');
    var key = event.key.toLowerCase();
    if ((key === 'a' || key === 'r') && form) {
      event.preventDefault();
      var button = document.getElementById(key === 'a' ? 'approve' : 'reject');
      // requestSubmit validates like a click: an empty required Reason is pointed out, not sent.
      if (typeof form.requestSubmit === 'function') form.requestSubmit(button);
      else button.click();
    } else if (key === 'v') {
      event.preventDefault();
      reveal();
    }
  });

  document.addEventListener('DOMContentLoaded', function () {
    var image = document.getElementById('subject');
    if (image && document.getElementById('reveal')) image.addEventListener('click', reveal);
  });
})();
