// Copy buttons for the pull commands; without JavaScript the commands stay selectable text.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button.copy-button")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const input = button.previousElementSibling;
      input.select();
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
      } catch {
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  }
});
