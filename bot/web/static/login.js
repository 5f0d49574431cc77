// Inside DingTalk: ask DingTalk for a one-time login code (H5 微应用 免登) and post it to the
// server, which signs the person in and sends them back to this page. Outside DingTalk, or
// when DingTalk refuses, nothing happens and the page's token text stays.
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || !window.dd || !/DingTalk/i.test(navigator.userAgent)) {
    return;
  }
  var corpId = me.getAttribute("data-corp-id");
  var action = me.getAttribute("data-action");
  function post(code) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = action;
    [["code", code], ["next", location.pathname + location.search]].forEach(function (pair) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = pair[0];
      input.value = pair[1];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }
  window.dd.ready(function () {
    window.dd.runtime.permission.requestAuthCode({
      corpId: corpId,
      onSuccess: function (result) { post(result.code); },
      onFail: function () {}
    });
  });
})();
