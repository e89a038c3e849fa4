/**
 * A Teams meeting body as Outlook writes it (nested divs, spans, &nbsp;, <br>, entity-encoded hrefs) and the text
 * cxsync reads it as (src/domain/body.ts): shared by the unit and integration tests of bodies.
 */
export const JOIN = 'https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjQ4ZTg5YjEtZjM2Ni00%40thread.v2/0?context=%7b%22Tid%22%3a%2272f988bf%22%2c%22Oid%22%3a%22a1b2%22%7d';
export const OPTIONS = 'https://teams.microsoft.com/meetingOptions/?organizerId=a1b2&tenantId=72f988bf&threadId=19_meeting&messageId=0&language=en-US';

export const TEAMS_BODY = `<html><head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<style type="text/css" style="display:none">P {margin-top:0;margin-bottom:0;}</style>
</head>
<body dir="ltr">
<div class="elementToProof" style="font-family: Aptos, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);">Agenda:&nbsp;pricing for <b>2025</b><br>
</div>
<div><br>
</div>
<div style="width:100%"><span style="white-space:nowrap; color:#5F5F5F; opacity:.36">________________________________________________________________________________</span></div>
<div class="me-email-text" lang="en-US" style="color:#252424; font-family:'Segoe UI','Helvetica Neue',Helvetica,Arial,sans-serif">
<div style="margin-top:24px; margin-bottom:20px"><span style="font-size:24px; color:#252424">Microsoft Teams meeting</span></div>
<div style="margin-bottom:20px">
<div style="margin-top:0px; margin-bottom:0px; font-weight:bold"><span style="font-size:14px; color:#252424">Join on your computer, mobile app or room device</span></div>
<a href="${JOIN.replace(/&/g, '&amp;')}" class="me-email-headline" style="font-size:14px; font-family:'Segoe UI Semibold','Segoe UI',sans-serif; text-decoration:underline; color:#6264a7" target="_blank" rel="noreferrer noopener">Join the meeting now</a>
</div>
<div style="margin-bottom:20px; margin-top:20px">
<div style="margin-bottom:4px"><span data-tid="meeting-code" style="font-size:14px; color:#252424">Meeting ID: <span style="font-size:16px; color:#252424">346 271 695 112</span> </span><br>
<span style="font-size:14px; color:#252424">Passcode: </span><span style="font-size:16px; color:#252424">4Rb6Ny </span>
<div style="font-size:14px"><a href="https://www.microsoft.com/en-us/microsoft-teams/download-app" class="me-email-link" style="font-size:14px; text-decoration:underline; color:#6264a7" target="_blank" rel="noreferrer noopener">Download Teams</a> | <a href="https://www.microsoft.com/microsoft-teams/join-a-meeting" class="me-email-link" target="_blank" rel="noreferrer noopener">Join on the web</a></div>
</div>
</div>
<div style="margin-bottom:24px; margin-top:20px"><a href="https://aka.ms/JoinTeamsMeeting" class="me-email-link" target="_blank" rel="noreferrer noopener">Learn More</a> | <a href="${OPTIONS.replace(/&/g, '&amp;')}" class="me-email-link" target="_blank" rel="noreferrer noopener">Meeting options</a> </div>
</div>
<div style="font-size:14px; margin-bottom:4px; font-family:'Segoe UI','Helvetica Neue',Helvetica,Arial,sans-serif">
</div>
<div style="font-size: 12px;"></div>
<div style="width:100%"><span style="white-space:nowrap; color:#5F5F5F; opacity:.36">________________________________________________________________________________</span></div>
</body>
</html>
`;

export const TEAMS_TEXT = [
  'Agenda: pricing for 2025',
  '',
  '_'.repeat(80),
  'Microsoft Teams meeting',
  'Join on your computer, mobile app or room device',
  `Join the meeting now <${JOIN}>`,
  'Meeting ID: 346 271 695 112',
  'Passcode: 4Rb6Ny',
  'Download Teams <https://www.microsoft.com/en-us/microsoft-teams/download-app> | Join on the web <https://www.microsoft.com/microsoft-teams/join-a-meeting>',
  `Learn More <https://aka.ms/JoinTeamsMeeting> | Meeting options <${OPTIONS}>`,
  '_'.repeat(80),
].join('\n');

