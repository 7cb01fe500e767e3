// Forms that undo work ask first: <form data-confirm="question">. A script file, not an
// inline onsubmit handler, because the Content-Security-Policy forbids inline script.
"use strict";

document.addEventListener("submit", (event) => {
  const question = event.target instanceof HTMLFormElement ? event.target.dataset.confirm : undefined;
  if (question && !window.confirm(question)) event.preventDefault();
});
